/** Interned strings of a parse, reused by the next parses. */
import * as bytesModule from './bytes.ts';
import * as hashModule from './hash.ts';
import * as workModule from './work.ts';

const { EMPTY_BYTES, EMPTY_VIEW, latin1Slice, sameBytes } = bytesModule;
const { EMPTY_HASH, hashString, seededIndex } = hashModule;
const { WORK } = workModule;

export const INTERN_SLOTS = 2048;
const INTERN_PROBES = 8;
/** Longer label values are rarely repeated; interning them would only crowd the table. */
export const INTERN_MAX_BYTES = 256;
/**
 * Different strings of one length met in probe runs in one parse before the table stops
 * interning for the rest of it: the sampled lookup hash is cheap to collide (same length, same
 * sampled bytes), and each such probe compares up to INTERN_MAX_BYTES.
 */
export const MAX_COLLISIONS_PER_PARSE = 2048;

/**
 * String interning for ASCII byte ranges (names, short label values): a repeated string is built
 * once per parse, and a string a previous parse built in the same slot is reused when its bytes
 * match, so successive scrapes of the same shim allocate almost no strings (a bounded cache: one
 * string per slot). The lookup hash samples a few bytes (O(1), hashing every byte cost more
 * than the rest of the parse); a hit is verified byte against byte at the string's first
 * occurrence. Within a parse a string is either found in its slot or not interned (its probe run
 * is full, or the parse met too many collisions): a slot number, when given, names one string.
 */
export class InternTable {
  private readonly lengths = new Int32Array(INTERN_SLOTS);
  private readonly starts = new Int32Array(INTERN_SLOTS);
  /** The parse that filled each slot: a slot of an older parse is free (its string may be reused). */
  private readonly generations = new Int32Array(INTERN_SLOTS);
  private readonly strings: string[] = new Array<string>(INTERN_SLOTS).fill('');
  /** hashString of each slot's string, kept with it across parses. */
  private readonly hashes = new Int32Array(INTERN_SLOTS).fill(EMPTY_HASH);
  private generation = 0;
  private collisions = 0;
  /** Slot of the last interned string, or -1 when it was not interned. */
  lastSlot = -1;
  /** hashString of the last interned string: series hashes depend on content only, never on slots. */
  lastHash = 0;

  private bytes: Buffer = EMPTY_BYTES;
  private view: DataView = EMPTY_VIEW;

  /** Starts a parse over `bytes`, read through the parser's `view` of them. */
  begin(bytes: Buffer, view: DataView): void {
    this.bytes = bytes;
    this.view = view;
    this.collisions = 0;
    if (++this.generation === 0x7fffffff) {
      this.generations.fill(0);
      this.generation = 1;
    }
  }

  /** Ends a parse: the input is not kept alive by the table. */
  end(): void {
    this.bytes = EMPTY_BYTES;
    this.view = EMPTY_VIEW;
  }

  intern(start: number, end: number): string {
    const length = end - start;
    this.lastSlot = -1;
    if (length === 0) {
      this.lastHash = EMPTY_HASH;
      return '';
    }
    const b = this.bytes;
    if (this.collisions >= MAX_COLLISIONS_PER_PARSE) return this.notInterned(start, end);
    const last = end - 1;
    const sampled = length ^ (b[start]! << 5) ^ (b[last]! << 12) ^ (b[start + (length >> 1)]! << 19) ^ (b[last - (length >> 2)]! << 26);
    let slot = seededIndex(sampled) >>> 21;
    const generation = this.generation;
    for (let probe = 0; probe < INTERN_PROBES; probe++) {
      if (this.generations[slot] !== generation) return this.fill(slot, start, end);
      if (this.lengths[slot] === length) {
        if (sameBytes(this.view, this.starts[slot]!, this.view, start, length)) {
          this.lastSlot = slot;
          this.lastHash = this.hashes[slot]!;
          return this.strings[slot]!;
        }
        WORK.collisions++;
        this.collisions++;
      }
      slot = (slot + 1) & (INTERN_SLOTS - 1);
    }
    return this.notInterned(start, end);
  }

  private notInterned(start: number, end: number): string {
    const text = latin1Slice(this.bytes, start, end);
    this.lastHash = hashString(text);
    return text;
  }

  private fill(slot: number, start: number, end: number): string {
    const length = end - start;
    const previous = this.strings[slot]!;
    const reused = previous.length === length && this.sameString(previous, start);
    const fresh = reused ? previous : latin1Slice(this.bytes, start, end);
    if (!reused) this.hashes[slot] = hashString(fresh);
    this.lastHash = this.hashes[slot]!;
    this.generations[slot] = this.generation;
    this.lengths[slot] = length;
    this.starts[slot] = start;
    this.strings[slot] = fresh;
    this.lastSlot = slot;
    return fresh;
  }

  /** An interned string is latin1 of ASCII bytes: one char code per byte. */
  private sameString(text: string, start: number): boolean {
    const b = this.bytes;
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) !== b[start + i]) return false;
    return true;
  }
}

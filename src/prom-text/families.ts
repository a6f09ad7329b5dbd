/**
 * The families of a parse: found by exact name, or by a histogram/summary parent for suffixed
 * sample names, in first-seen order; HELP and TYPE lines fill them in.
 */
import { INTERN_SLOTS } from './intern-table.ts';
import { keptByPrefixes, type PrefixTrie } from './prefix-trie.ts';
import type { MetricType, PromFamily, PromSample } from './types.ts';

export interface FamilyState {
  name: string;
  type: MetricType | undefined;
  help: string | undefined;
  /** Set by its HELP line, also when the text is omitted. */
  hasHelp: boolean;
  hasSamples: boolean;
  /** False for a family outside keepPrefixes that is tracked only for name resolution. */
  kept: boolean;
  /** Some series of it were skipped by keepSeries. */
  filtered: boolean;
  samples: PromSample[];
}

/**
 * Sample name (by intern slot) → family, shared by every parse (a parse is synchronous): an entry
 * is valid while its epoch is the parse's current one.
 */
const SLOTS = {
  family: new Array<FamilyState | undefined>(INTERN_SLOTS).fill(undefined),
  /** Float64: epochs grow across parses and must not wrap. */
  epoch: new Float64Array(INTERN_SLOTS),
  last: 0,
};

export class FamilyTable {
  private readonly list: FamilyState[] = [];
  private readonly byName = new Map<string, FamilyState>();
  /** Some slot entry was set: release() clears them (they hold this parse's families). */
  private slotsUsed = false;
  /**
   * Above every epoch an earlier parse left in the slots; a new one whenever a HELP/TYPE line
   * creates or types a family (the only changes to how sample names resolve).
   */
  epoch = ++SLOTS.last;

  constructor(
    private readonly trie: PrefixTrie | undefined,
    private readonly prefixes: readonly string[] | undefined,
  ) {}

  /** The family a sample belongs to: exact name, else a histogram/summary parent, else its own. */
  forSample(name: string, slot: number): FamilyState {
    if (slot >= 0 && SLOTS.epoch[slot] === this.epoch) return SLOTS.family[slot]!;
    const family = this.byName.get(name) ?? this.parentOf(name) ?? this.create(name);
    if (slot >= 0) {
      SLOTS.family[slot] = family;
      this.slotsUsed = true;
      SLOTS.epoch[slot] = this.epoch;
    }
    return family;
  }

  /** The family a HELP/TYPE line names (exact name only). */
  named(name: string): FamilyState {
    const existing = this.byName.get(name);
    if (existing !== undefined) return existing;
    // The exact family now wins over a parent this name may have resolved to before.
    this.changed();
    return this.create(name);
  }

  /** Sample names may resolve differently from now on. */
  changed(): void {
    this.epoch = ++SLOTS.last;
  }

  /** The families with samples (or with series keepSeries skipped), in first-seen order. */
  result(): PromFamily[] {
    const families: PromFamily[] = [];
    for (const f of this.list) {
      if (f.samples.length === 0 && !f.filtered) continue;
      const type = f.type ?? 'untyped';
      families.push(
        f.help === undefined ? { name: f.name, type, samples: f.samples } : { name: f.name, type, help: f.help, samples: f.samples },
      );
    }
    return families;
  }

  /** Ends the parse: the shared slots no longer hold its families. */
  release(): void {
    if (this.slotsUsed) SLOTS.family.fill(undefined);
  }

  private parentOf(name: string): FamilyState | undefined {
    const suffix = name.endsWith('_bucket') ? 7 : name.endsWith('_count') ? 6 : name.endsWith('_sum') ? 4 : 0;
    if (suffix === 0 || name.length === suffix) return undefined;
    const parent = this.byName.get(name.slice(0, -suffix));
    if (parent?.type === 'histogram') return parent;
    if (parent?.type === 'summary' && suffix !== 7) return parent;
    return undefined;
  }

  private create(name: string): FamilyState {
    const family: FamilyState = {
      name,
      type: undefined,
      help: undefined,
      hasHelp: false,
      hasSamples: false,
      filtered: false,
      kept: this.prefixes === undefined || keptByPrefixes(this.trie!, this.prefixes, name),
      samples: [],
    };
    this.byName.set(name, family);
    this.list.push(family);
    return family;
  }
}

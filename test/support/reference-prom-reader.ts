/**
 * A slow, line-based reader of the Prometheus text format for conformance tests: an independent
 * reading to check the project's parser and decoders against. It keeps every sample line as it
 * is (repeats included), reads labels with their escapes, and ignores comments and blank lines.
 * It does not validate: a payload it cannot read yields a line it reports.
 */

export interface ReferenceSample {
  name: string;
  labels: Record<string, string>;
  value: number;
  timestampMs?: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;

export function readReferenceSamples(text: string): { samples: ReferenceSample[]; unreadable: string[] } {
  const samples: ReferenceSample[] = [];
  const unreadable: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const sample = readLine(line);
    if (sample === undefined) unreadable.push(line);
    else samples.push(sample);
  }
  return { samples, unreadable };
}

function readLine(line: string): ReferenceSample | undefined {
  const name = NAME.exec(line)?.[0];
  if (name === undefined) return undefined;
  let rest = line.slice(name.length);
  const labels: Record<string, string> = {};
  if (rest.startsWith('{')) {
    let i = 1;
    for (;;) {
      while (rest[i] === ' ' || rest[i] === ',') i++;
      if (rest[i] === '}') break;
      const labelName = NAME.exec(rest.slice(i))?.[0];
      if (labelName === undefined || rest[i + labelName.length] !== '=' || rest[i + labelName.length + 1] !== '"') return undefined;
      i += labelName.length + 2;
      let value = '';
      while (i < rest.length && rest[i] !== '"') {
        if (rest[i] === '\\') {
          const next = rest[i + 1];
          value += next === 'n' ? '\n' : next;
          i += 2;
        } else {
          value += rest[i];
          i++;
        }
      }
      if (i >= rest.length) return undefined;
      labels[labelName] = value;
      i++;
    }
    rest = rest.slice(i + 1);
  }
  const fields = rest.trim().split(/\s+/);
  if (fields.length < 1 || fields.length > 2) return undefined;
  const value = parseValue(fields[0]!);
  if (value === undefined) return undefined;
  const sample: ReferenceSample = { name, labels, value };
  if (fields[1] !== undefined) sample.timestampMs = Number(fields[1]);
  return sample;
}

function parseValue(text: string): number | undefined {
  if (text === 'NaN') return NaN;
  if (text === '+Inf' || text === 'Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  const value = Number(text);
  return text !== '' && !Number.isNaN(value) ? value : undefined;
}

/**
 * Writes the bridge's families of one NodeSnapshot as exposition text (Prometheus text 0.0.4 or
 * OpenMetrics), byte for byte as @prometheus-io/client's Registry writes them when each family is
 * a callback metric (test/unit/exposition-writer.test.ts holds it to that), at a fraction of the
 * cost: headers are computed once, and a label value that needs no escape is used as is.
 */

import { createHash } from 'node:crypto';
import { escapeHelp, escapeLabelValue, formatSampleValue } from '../prom-text/format.ts';
import type { FamilyDef, Labels } from './families.ts';
import type { NodeSnapshot } from '../translate/snapshot.ts';
import type { ExpositionFormat } from './exposition-format.ts';

/**
 * The longest label value published. Names from the API server are far shorter (pods 253,
 * namespaces and containers 63); only a broken or hostile source or a deep host path reaches it.
 */
export const MAX_LABEL_VALUE_CHARS = 1024;

/** Cuts an over-long value, keeping a digest of the whole so two long values stay two series. */
export function boundLabelValue(value: string): string {
  if (value.length <= MAX_LABEL_VALUE_CHARS) return value;
  const digest = createHash('sha256').update(value).digest('hex').slice(0, 16);
  return `${value.slice(0, MAX_LABEL_VALUE_CHARS - digest.length - 3)}...${digest}`;
}

/** A bounded label value, escaped as the library's escapeLabelValue. */
function labelValue(value: string): string {
  return escapeLabelValue(value.length > MAX_LABEL_VALUE_CHARS ? boundLabelValue(value) : value);
}

/** `{a="x",b="y"}` in the labels' own insertion order (as Object.entries), or '' without labels. */
function formatLabels(labels: Labels): string {
  let out = '';
  for (const name in labels) {
    if (!Object.hasOwn(labels, name)) continue;
    out += `${out === '' ? '{' : ','}${name}="${labelValue(labels[name]!)}"`;
  }
  return out === '' ? out : `${out}}`;
}

interface PreparedFamily {
  def: FamilyDef;
  /** `# HELP` and `# TYPE` lines, without a trailing newline. */
  header: string;
  sampleName: string;
}

/**
 * OpenMetrics: the library strips `_total` from a counter's family name (HELP and TYPE) and
 * writes its samples as `<family>_total`.
 */
function prepare(def: FamilyDef, prefix: string, format: ExpositionFormat): PreparedFamily {
  const counterInOpenMetrics = format === 'openmetrics' && def.type === 'counter';
  const name = escapeHelp(counterInOpenMetrics ? (prefix + def.name).replace(/_total$/, '') : prefix + def.name);
  return {
    def,
    header: `# HELP ${name} ${escapeHelp(def.help)}\n# TYPE ${name} ${def.type}`,
    sampleName: counterInOpenMetrics ? `${name}_total` : name,
  };
}

/** Between two metrics, as the library joins them. */
export const METRIC_SEPARATOR: Record<ExpositionFormat, string> = { text: '\n\n', openmetrics: '\n' };

export class ExpositionWriter {
  private readonly prepared: Record<ExpositionFormat, readonly PreparedFamily[]>;

  constructor(defs: readonly FamilyDef[], prefix: string) {
    this.prepared = {
      text: defs.map((def) => prepare(def, prefix, 'text')),
      openmetrics: defs.map((def) => prepare(def, prefix, 'openmetrics')),
    };
  }

  /**
   * The families in table order, separated as the library separates metrics, without a trailing
   * newline. A family without values is its HELP and TYPE lines alone, as the library writes it.
   * Built with +=: one copy when the rope is flattened, fewer than joining an array of lines.
   */
  write(snapshot: NodeSnapshot, format: ExpositionFormat): string {
    const separator = METRIC_SEPARATOR[format];
    let out = '';
    let first = true;
    for (const family of this.prepared[format]) {
      if (!first) out += separator;
      first = false;
      out += family.header;
      const sampleName = family.sampleName;
      family.def.collect(snapshot, (labels, value) => {
        out += `\n${sampleName}${formatLabels(labels)} ${formatSampleValue(value)}`;
      });
    }
    return out;
  }
}

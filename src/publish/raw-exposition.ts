/**
 * Serialises the raw shim families of --collector.shim-raw. Pure. Its input holds only Kata's own
 * family names and no reserved label (translate/shim-raw.ts), so no family here can be one of the
 * exporter's. Families of the same name from different sandboxes share one HELP and TYPE; the
 * first sandbox's type wins and a sample whose family disagrees is dropped, so the output stays a
 * valid exposition whatever a guest sends.
 */

import type { RawSandboxFamilies } from '../translate/shim-raw.ts';
import { RAW_IDENTITY_LABELS } from '../translate/shim-raw.ts';
import type { ExpositionFormat } from './exposition-format.ts';
import { escapeHelp, escapeLabelValue } from '../prom-text/format.ts';

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

const OPENMETRICS_TYPE: Record<string, string> = { untyped: 'unknown' };

/**
 * OpenMetrics names a counter family without its _total suffix, and a counter's samples must end
 * in _total: a Kata counter without the suffix (kata_agent_scrape_count) can only be `unknown`.
 */
function openMetricsFamily(name: string, type: string): { familyName: string; type: string } {
  if (type === 'counter')
    return name.endsWith('_total') ? { familyName: name.slice(0, -'_total'.length), type } : { familyName: name, type: 'unknown' };
  return { familyName: name, type: OPENMETRICS_TYPE[type] ?? type };
}

interface MergedFamily {
  type: string;
  help: string | undefined;
  lines: string[];
}

export function renderRawFamilies(sandboxes: readonly RawSandboxFamilies[], format: ExpositionFormat): string {
  const merged = new Map<string, MergedFamily>();
  for (const sandbox of sandboxes) {
    const identity = RAW_IDENTITY_LABELS.map((name) => `${name}="${escapeLabelValue(sandbox.labels[name] ?? '')}"`);
    for (const family of sandbox.families) {
      let target = merged.get(family.name);
      if (target === undefined) {
        target = { type: family.type, help: family.help, lines: [] };
        merged.set(family.name, target);
      }
      if (target.type !== family.type) continue;
      for (const sample of family.samples) {
        const own = Object.entries(sample.labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
        target.lines.push(`${sample.name}{${[...identity, ...own].join(',')}} ${formatValue(sample.value)}`);
      }
    }
  }
  const out: string[] = [];
  for (const [name, family] of merged) {
    const { familyName, type } = format === 'openmetrics' ? openMetricsFamily(name, family.type) : { familyName: name, type: family.type };
    if (family.help !== undefined) out.push(`# HELP ${familyName} ${escapeHelp(family.help)}`);
    out.push(`# TYPE ${familyName} ${type}`);
    out.push(...family.lines);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/**
 * kata-monitor compatibility (--collector.shim-raw): the raw shim families of each sandbox, with
 * the labels kata-monitor adds and the shim's own Go runtime families renamed as it renames them.
 * The families come from the guest-facing shim: the parser bounds them, only Kata's own family
 * names pass, a sample with a label name that the exporter or Prometheus gives meaning to is
 * dropped, and the serializer escapes every label value, so nothing a guest writes can add a
 * label or a series of its own making, or pass for another pod's or another job's series.
 */

import { parsePromText, type ParseLimits, type PromFamily } from '../prom-text/index.ts';
import type { SandboxPodRef, SandboxRecord } from './records.ts';

export interface RawSandboxFamilies {
  /** Labels added to every sample: sandbox_id, cri_uid, cri_name, cri_namespace. */
  labels: Record<string, string>;
  families: PromFamily[];
}

/** The labels kata-monitor adds. */
export const RAW_IDENTITY_LABELS = ['sandbox_id', 'cri_uid', 'cri_name', 'cri_namespace'] as const;

/**
 * Label names a guest may not use: kata-monitor's, the workload identity the exporter's series
 * carry (scraped with honor_labels, so a guest's `namespace` would win), and the target labels
 * the shipped scrape configurations set. A sample that uses one is dropped whole: dropping only
 * the label could leave two samples with the same series.
 */
const RESERVED_LABELS: ReadonlySet<string> = new Set([
  ...RAW_IDENTITY_LABELS,
  'namespace',
  'pod',
  'container',
  'uid',
  'node',
  'job',
  'instance',
  'endpoint',
  'exporter_namespace',
  'exporter_pod',
]);

/** Meaningful to Prometheus only in the family types that own them. */
const TYPE_LABELS: Readonly<Record<string, string>> = { le: 'histogram', quantile: 'summary' };

function isReservedLabel(name: string, familyType: string): boolean {
  if (RESERVED_LABELS.has(name) || name.startsWith('__')) return true;
  const owner = TYPE_LABELS[name];
  return owner !== undefined && owner !== familyType;
}

/** Kata's own families (after kata-monitor's renaming); never the exporter's `kata_bridge_*`. */
export function isKataFamilyName(name: string): boolean {
  return name.startsWith('kata_') && !name.startsWith('kata_bridge_');
}

/** kata-monitor prefixes the shim process's unprefixed Go client families. */
export function kataMonitorName(name: string): string {
  if (name.startsWith('go_') || name.startsWith('process_')) return `kata_shim_${name}`;
  return name;
}

export function extractRawFamilies(
  body: Uint8Array,
  sandbox: SandboxRecord,
  pod: SandboxPodRef | undefined,
  limits: Partial<ParseLimits>,
): RawSandboxFamilies {
  const parsed = parsePromText(body, { limits });
  const families: PromFamily[] = [];
  for (const family of parsed.families) {
    const renamed = kataMonitorName(family.name);
    if (!isKataFamilyName(renamed)) continue;
    const prefixChange = renamed.length - family.name.length;
    const samples = family.samples
      .filter((sample) => !Object.keys(sample.labels).some((label) => isReservedLabel(label, family.type)))
      .map((sample) => ({ ...sample, name: prefixChange === 0 ? sample.name : kataMonitorName(sample.name) }));
    families.push({ ...family, name: renamed, samples });
  }
  return {
    labels: {
      sandbox_id: sandbox.id,
      cri_uid: pod?.uid ?? '',
      cri_name: pod?.name ?? '',
      cri_namespace: pod?.namespace ?? '',
    },
    families,
  };
}

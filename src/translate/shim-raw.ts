/**
 * kata-monitor compatibility (--collector.shim-raw): the raw shim families of each sandbox, with
 * the labels kata-monitor adds and the shim's own Go runtime families renamed as it renames them.
 * The families come from the guest-facing shim: the parser bounds them and the serializer escapes
 * every label value, so nothing a guest writes can add a label or a series of its own making.
 */

import { parsePromText, type ParseLimits, type PromFamily } from '../prom-text/index.ts';
import type { SandboxPodRef, SandboxRecord } from './records.ts';

export interface RawSandboxFamilies {
  /** Labels added to every sample: sandbox_id, cri_uid, cri_name, cri_namespace. */
  labels: Record<string, string>;
  families: PromFamily[];
}

/** The labels kata-monitor adds; a sample's own label of the same name is dropped. */
export const RAW_IDENTITY_LABELS = ['sandbox_id', 'cri_uid', 'cri_name', 'cri_namespace'] as const;

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
  const families = parsed.families.map((family) => {
    const renamed = kataMonitorName(family.name);
    const prefixChange = renamed.length - family.name.length;
    return {
      ...family,
      name: renamed,
      samples: family.samples.map((sample) => ({
        ...sample,
        name: prefixChange === 0 ? sample.name : kataMonitorName(sample.name),
      })),
    };
  });
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

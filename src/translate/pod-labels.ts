/**
 * `--pods.labels-allowlist`: which pod labels `kata_bridge_pod_labels` publishes, with
 * kube-state-metrics' semantics (`--metric-labels-allowlist=pods=[...]`) for the one resource this
 * exporter watches. Pure.
 *
 * - The value is a comma list of label keys (`tenant,app.kubernetes.io/name`), or `*` for every
 *   label; KSM's own spelling `pods=[tenant,repository]` is accepted too. Empty: nothing.
 * - Names are sanitised as KSM does: `label_` + the key with every character outside
 *   [a-zA-Z0-9_] turned into `_`, camelCase turned into snake_case; keys that sanitise to the
 *   same name get `_conflict1`, `_conflict2`... in the sorted order of the keys.
 * - Label values come from the API server; bounded anyway: at most MAX_POD_LABELS per pod (the
 *   first in key order), each value cut to MAX_LABEL_VALUE_LENGTH characters; a key whose name
 *   another key's suffixed name already took is dropped.
 */

export interface LabelsAllowlist {
  /** `*`: every label of the pod. */
  all: boolean;
  keys: ReadonlySet<string>;
}

export const NO_LABELS: LabelsAllowlist = { all: false, keys: new Set() };

/** Most labels one pod publishes, `*` included. */
export const MAX_POD_LABELS = 16;
/** Kubernetes caps a label value at 63 characters; anything longer is cut here. */
export const MAX_LABEL_VALUE_LENGTH = 63;
/** A qualified key is at most 253 (prefix) + 1 + 63 (name) characters. */
const MAX_LABEL_KEY_LENGTH = 317;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]*$/;

export class LabelsAllowlistError extends Error {
  override name = 'LabelsAllowlistError';
}

/** Parses the flag's value; throws LabelsAllowlistError with the offending part. */
export function parseLabelsAllowlist(text: string): LabelsAllowlist {
  let body = text.trim();
  const ksm = /^pods=\[(.*)\]$/.exec(body);
  if (ksm !== null) body = ksm[1]!;
  else if (/^[a-z]+=\[/.test(body))
    throw new LabelsAllowlistError(`only the pods resource applies here, not "${body.slice(0, body.indexOf('='))}"`);
  const keys = body
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key !== '');
  if (keys.includes('*')) {
    if (keys.length > 1) throw new LabelsAllowlistError('"*" allows every label: list no other key beside it');
    return { all: true, keys: new Set() };
  }
  for (const key of keys) {
    if (key.length > MAX_LABEL_KEY_LENGTH || !LABEL_KEY.test(key)) throw new LabelsAllowlistError(`"${key}" is not a label key`);
  }
  return { all: false, keys: new Set(keys) };
}

/** KSM's sanitiser: invalid characters to `_`, then camelCase to snake_case. */
export function sanitizeLabelName(key: string): string {
  return key
    .replace(/[^a-zA-Z0-9_]/g, '_')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/**
 * The allowlisted labels of one pod as published label names and values; an empty object when
 * none applies. Conflicting names are suffixed as KSM does, so no label is silently overwritten.
 */
export function publishedPodLabels(
  labels: Readonly<Record<string, string>> | undefined,
  allowlist: LabelsAllowlist,
): Record<string, string> {
  if (labels === undefined || (!allowlist.all && allowlist.keys.size === 0)) return {};
  const keys = Object.keys(labels)
    .filter((key) => allowlist.all || allowlist.keys.has(key))
    .sort()
    .slice(0, MAX_POD_LABELS);
  const names = keys.map((key) => `label_${sanitizeLabelName(key)}`);
  const counts = new Map<string, number>();
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
  const seen = new Map<string, number>();
  const out: Record<string, string> = {};
  keys.forEach((key, i) => {
    const base = names[i]!;
    let name = base;
    if (counts.get(base)! > 1) {
      const n = (seen.get(base) ?? 0) + 1;
      seen.set(base, n);
      name = `${base}_conflict${n}`;
    }
    // A key may itself sanitise to another's suffixed name (`a_b_conflict1`): the first keeps it.
    if (!Object.hasOwn(out, name)) out[name] = labels[key]!.slice(0, MAX_LABEL_VALUE_LENGTH);
  });
  return out;
}

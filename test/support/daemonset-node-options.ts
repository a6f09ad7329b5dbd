/** The DaemonSet's NODE_OPTIONS, read from the manifest so the bench and the soak cannot drift from it. */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export function daemonSetNodeOptions(): string[] {
  const manifest = parse(readFileSync(new URL('../../deploy/kubernetes/base/daemonset.yaml', import.meta.url), 'utf8')) as {
    spec: { template: { spec: { containers: { env?: { name: string; value?: string }[] }[] } } };
  };
  const value = manifest.spec.template.spec.containers[0]?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
  return value.split(/\s+/).filter((flag) => flag !== '');
}

/** The DaemonSet's NODE_OPTIONS and runtime environment, read from the manifest so the bench and the soak cannot drift from it. */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

type EnvVar = { name: string; value?: string };

/** `manifest`: another checkout's daemonset.yaml (the bench's side-by-side "before"); this one's by default. */
function containerEnv(manifest: string | URL = new URL('../../deploy/kubernetes/base/daemonset.yaml', import.meta.url)): EnvVar[] {
  const parsed = parse(readFileSync(manifest, 'utf8')) as {
    spec: { template: { spec: { containers: { env?: EnvVar[] }[] } } };
  };
  return parsed.spec.template.spec.containers[0]?.env ?? [];
}

export function daemonSetNodeOptions(manifest?: string | URL): string[] {
  const value = containerEnv(manifest).find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
  return value.split(/\s+/).filter((flag) => flag !== '');
}

/** The container's other literal environment variables (MALLOC_ARENA_MAX): what the process runs with besides its flags. */
export function daemonSetRuntimeEnv(manifest?: string | URL): Record<string, string> {
  return Object.fromEntries(
    containerEnv(manifest).flatMap((e) => (e.name !== 'NODE_OPTIONS' && e.value !== undefined ? [[e.name, e.value]] : [])),
  );
}

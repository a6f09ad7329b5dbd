/**
 * Memory side by side (never part of npm test): several exporters, each compiled as the image runs
 * it, against one simulated node, their collections interleaved.
 *
 *   npx tsx bench/memory.ts [--n=250] [--collections=8] [--variant=NAME:FLAG,FLAG,ENV=VALUE]… [--tree=DIR] [--mappings]
 *
 * The first exporter runs as shipped (the image's flags and the DaemonSet's NODE_OPTIONS); each
 * --variant adds node flags or environment variables to those; --tree adds an exporter of another
 * checkout of the project (its src/ and its DaemonSet's NODE_OPTIONS, e.g. `git archive main`
 * unpacked): a before / after in one run. Prints, per exporter, the idle RSS (serving, pods
 * watched, no collection), split into anonymous and file-backed pages, the peak over the
 * collections, the V8 heap after a collection, and the CPU and wall per collection; --mappings
 * first lists the largest resident mappings of the shipped exporter, idle.
 */
import { Child } from './child.ts';
import type { CollectSample } from './exporter-child.ts';
import type { ProcessMemory } from './process-memory.ts';

const MIB = 2 ** 20;
const argv = process.argv.slice(2);
const value = (name: string, fallback: string): string => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const n = Number(value('n', '250'));
const collections = Number(value('collections', '8'));

interface Variant {
  name: string;
  flags: string[];
  env: Record<string, string>;
  tree?: string;
}

function parseVariant(spec: string): Variant {
  const colon = spec.indexOf(':');
  const name = colon < 0 ? spec : spec.slice(0, colon);
  const variant: Variant = { name, flags: [], env: {} };
  for (const part of colon < 0 ? [] : spec.slice(colon + 1).split(',')) {
    if (part.startsWith('--')) variant.flags.push(part);
    else if (part.includes('=')) variant.env[part.slice(0, part.indexOf('='))] = part.slice(part.indexOf('=') + 1);
    else if (part !== '') throw new Error(`memory: "${part}" in --variant is neither a --flag nor NAME=VALUE`);
  }
  return variant;
}

const variants: Variant[] = [{ name: 'as shipped', flags: [], env: {} }];
for (const arg of argv) {
  if (arg.startsWith('--variant=')) variants.push(parseVariant(arg.slice('--variant='.length)));
  if (arg.startsWith('--tree='))
    variants.push({ name: `tree ${arg.slice('--tree='.length)}`, flags: [], env: {}, tree: arg.slice('--tree='.length) });
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const mib = (bytes: number): string => (bytes / MIB).toFixed(1);

async function main(): Promise<void> {
  const node = new Child('node-child.ts', [String(n)]);
  const exporters = variants.map(
    (v) => new Child('exporter-child.ts', [], { runtime: 'compiled', extraFlags: v.flags, env: v.env, tree: v.tree }),
  );
  try {
    const ready = await node.next<{ flags: string[]; env: Record<string, string> }>();
    const idle: ProcessMemory[] = [];
    // One at a time, so that no start-up competes with another's for the cores.
    for (const exporter of exporters)
      idle.push((await exporter.request<{ idle: ProcessMemory }>({ kind: 'start', flags: ready.flags, env: ready.env, pods: n })).idle);
    if (argv.includes('--mappings')) {
      const { mappings } = await exporters[0]!.request<{ mappings: { mapping: string; rssBytes: number }[] }>({ kind: 'mappings' });
      console.log(
        `## Resident mappings of the first exporter, idle; then its V8 heap spaces (physical) and external memory\n${mappings.map((m) => `${mib(m.rssBytes).padStart(7)} MiB  ${m.mapping}`).join('\n')}\n`,
      );
    }
    const samples: CollectSample[][] = exporters.map(() => []);
    for (let round = 0; round < collections; round++) {
      process.stderr.write(`round ${round + 1} of ${collections}\n`);
      for (const [i, exporter] of exporters.entries()) samples[i]!.push(await exporter.request<CollectSample>({ kind: 'collect' }));
    }
    console.log(`## Memory at N = ${n}, ${collections} collections each, interleaved (resident MiB; CPU and wall: medians)`);
    console.log(
      '| exporter | node flags and environment added | idle RSS (anonymous + file) | peak RSS | heap used / reserved after a collection | CPU ms | wall ms | shims scraped |',
    );
    console.log('|---|---|---|---|---|---|---|---|');
    for (const [i, v] of variants.entries()) {
      const s = samples[i]!;
      const added = [...v.flags, ...Object.entries(v.env).map(([k, val]) => `${k}=${val}`)].join(' ') || '–';
      console.log(
        `| ${v.name} | ${added} | ${mib(idle[i]!.rssBytes)} (${mib(idle[i]!.anonBytes)} + ${mib(idle[i]!.fileBytes)}) | ${mib(Math.max(...s.map((x) => x.maxRssBytes)))} | ${mib(median(s.map((x) => x.heapUsedBytes)))} / ${mib(median(s.map((x) => x.heapTotalBytes)))} | ${median(s.map((x) => x.cpuMs)).toFixed(0)} | ${median(s.map((x) => x.wallMs)).toFixed(0)} | ${Math.min(...s.map((x) => x.shimsOk))} of ${n} |`,
      );
    }
  } finally {
    await Promise.all([...exporters.map((e) => e.stop()), node.stop()]);
  }
}

await main();

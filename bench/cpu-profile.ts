/**
 * Where a collection's CPU goes (never part of npm test):
 * `npx tsx bench/cpu-profile.ts [N=250] [collections=5] [window]`, where `window` (say 0-100)
 * keeps only the samples taken that many ms after each collection's start: what holds the event
 * loop while the first shim answers are due, for instance.
 *
 * Runs the whole Exporter in this process against the simulated node (bench/node-child.ts in a
 * child), warms it up with two collections, then profiles a few more with V8's CPU profiler and
 * prints the self time by function and the time by the nearest frame in src/ (or the package,
 * for time spent where no src/ frame is on the stack: socket reads, timers, GC).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { startInProcessExporter } from './in-process.ts';

const n = Number(process.argv[2] ?? 250);
const collections = Number(process.argv[3] ?? 5);
const window = /^(\d+)-(\d+)$/.exec(process.argv[4] ?? '');
const windowUs = window === null ? undefined : { from: Number(window[1]) * 1000, to: Number(window[2]) * 1000 };

interface CpuNode {
  id: number;
  callFrame: { functionName: string; url: string };
  children?: number[];
}
interface CpuProfile {
  startTime: number;
  nodes: CpuNode[];
  samples: number[];
  timeDeltas: number[];
}

function label(node: CpuNode): string {
  const { url, functionName } = node.callFrame;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  const file = pkg ?? (url.includes('/src/') ? `src/${url.split('/src/')[1]}` : (url.split('/').pop() ?? ''));
  return `${functionName || '(anonymous)'} ${file}`.trim();
}

/** Sample times are V8's monotonic microseconds, the clock of process.hrtime. */
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** Whether sample i fell in the window after some collection's start. */
function inWindow(profile: CpuProfile, starts: readonly number[]): (i: number) => boolean {
  if (windowUs === undefined) return () => true;
  const at: number[] = [];
  let t = profile.startTime;
  for (const delta of profile.timeDeltas) at.push((t += delta));
  return (i) => starts.some((start) => at[i]! - start >= windowUs.from && at[i]! - start < windowUs.to);
}

function report(profile: CpuProfile, runs: number, keep: (i: number) => boolean = () => true): void {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const time = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    if (keep(i)) time.set(id, (time.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const self = new Map<string, number>();
  const nearest = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const us = time.get(node.id) ?? 0;
    if (us === 0 || node.callFrame.functionName === '(idle)') continue;
    total += us;
    self.set(label(node), (self.get(label(node)) ?? 0) + us);
    let owner = node.callFrame.functionName.startsWith('(') ? node.callFrame.functionName : '(no src/ frame)';
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = byId.get(id)!;
      if (frame.callFrame.url.includes('/src/')) {
        owner = label(frame);
        break;
      }
    }
    nearest.set(owner, (nearest.get(owner) ?? 0) + us);
  }
  const print = (title: string, table: Map<string, number>): void => {
    console.log(`\n${title}`);
    for (const [name, us] of [...table].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
      console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000 / runs).toFixed(1).padStart(7)} ms  ${name}`);
    }
  };
  const where = windowUs === undefined ? '' : ` from ${windowUs.from / 1000} to ${windowUs.to / 1000} ms after its start`;
  console.log(`busy CPU on the main thread: ${(total / 1000 / runs).toFixed(0)} ms per collection${where}`);
  print('self time', self);
  print('by nearest src/ frame', nearest);
}

async function main(): Promise<void> {
  const { collect, close } = await startInProcessExporter(n);

  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  const cpu0 = process.cpuUsage();
  const starts: number[] = [];
  for (let i = 0; i < collections; i++) {
    starts.push(nowUs());
    await collect();
  }
  const cpu = process.cpuUsage(cpu0);
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: CpuProfile };
  console.log(`process CPU (all threads): ${((cpu.user + cpu.system) / 1000 / collections).toFixed(0)} ms per collection`);
  report(profile, collections, inWindow(profile, starts));
  // For a closer look (e.g. in Chrome DevTools): BENCH_CPU_PROFILE=file.cpuprofile.
  if (process.env.BENCH_CPU_PROFILE) writeFileSync(process.env.BENCH_CPU_PROFILE, JSON.stringify(profile));
  await close();
}

await main();

/**
 * The exporter's memory targets (issue 16), in resident MiB of the exporter process compiled as
 * the image runs it: idle is started, serving and watching pods, before any collection; a peak
 * is the high-water mark over the collections at N sandboxes.
 */
export const IDLE_RSS_TARGET_MIB = 64;
export const PEAK_RSS_TARGETS_MIB: ReadonlyMap<number, number> = new Map([
  [250, 96],
  [500, 112],
  [2500, 192],
]);

export interface Verdict {
  target: string;
  measured: string;
  ok: boolean;
}

const MIB = 2 ** 20;

/** The idle target at every N (the pod list grows with N), the peak target at each N that has one. */
export function memoryVerdicts(sizes: readonly { n: number; idleRss: number; peakRss: number }[]): Verdict[] {
  const mib = (bytes: number): string => `${(bytes / MIB).toFixed(0)} MiB`;
  const idle = Math.max(...sizes.map((s) => s.idleRss));
  const verdicts: Verdict[] = [
    {
      target: `idle RSS ≤ ${IDLE_RSS_TARGET_MIB} MiB (started, pods watched, no collection; N = ${sizes.map((s) => s.n).join(', ')})`,
      measured: sizes.map((s) => mib(s.idleRss)).join(' / '),
      ok: idle <= IDLE_RSS_TARGET_MIB * MIB,
    },
  ];
  for (const s of sizes) {
    const target = PEAK_RSS_TARGETS_MIB.get(s.n);
    if (target !== undefined)
      verdicts.push({ target: `peak RSS ≤ ${target} MiB (N = ${s.n})`, measured: mib(s.peakRss), ok: s.peakRss <= target * MIB });
  }
  return verdicts;
}

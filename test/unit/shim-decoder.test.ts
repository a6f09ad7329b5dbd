/**
 * Shim bodies decoded on a worker thread (src/shim-decoder.ts): the same outcomes as on the main
 * thread, and the main thread keeps turning while a hostile body is decoded.
 */
import { readFile } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { wideSeriesPayload } from '../../src/lab/fake-shim.ts';
import { inlineShimDecoder, WorkerShimDecoder } from '../../src/shim-decoder.ts';

const fixture = (name: string) => readFile(new URL(`../fixtures/kata/${name}.prom`, import.meta.url));

/** Event-loop turns of this thread while `work` is pending. */
async function turnsDuring<T>(work: () => Promise<T>): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let done = false;
  const spin = (): void => {
    turns++;
    if (!done) setImmediate(spin);
  };
  spin();
  const value = await work();
  done = true;
  return { value, turns: turns - 1 };
}

describe('WorkerShimDecoder', () => {
  const decoder = new WorkerShimDecoder();
  afterAll(() => decoder.close());

  it('decodes as the main thread does: metrics, malformed bodies, series past the cap', async () => {
    const normal = await fixture('go-qemu');
    const input = { runtime: 'go' as const, hypervisor: 'qemu' as const, maxSeries: 20_000 };
    for (const [body, maxSeries] of [
      [normal, 20_000],
      [Buffer.from('\u0000{"not":"prometheus"}\n'), 20_000],
      [normal, 10],
    ] as const) {
      expect(await decoder.decode(body, { ...input, maxSeries })).toEqual(await inlineShimDecoder.decode(body, { ...input, maxSeries }));
    }
  });

  it('the body may be reused as soon as decode() returns: the worker has its own copy', async () => {
    const body = Buffer.from(await fixture('go-qemu'));
    const decoding = decoder.decode(body, { runtime: 'go', maxSeries: 20_000 });
    body.fill(0);
    expect((await decoding).state).toBe('ok');
  });

  it('this thread keeps turning while a hostile 4 MiB body is decoded; on this thread it would not turn once', async () => {
    // 4 MiB: the default --shim.max-bytes.
    const body = wideSeriesPayload((await fixture('go-qemu')).toString(), 4 * 1024 * 1024);
    const input = { runtime: 'go' as const, maxSeries: 20_000 };
    const offThread = await turnsDuring(() => decoder.decode(body, input));
    const onThread = await turnsDuring(() => inlineShimDecoder.decode(body, input));
    expect(offThread.value).toEqual(onThread.value);
    expect(onThread.turns).toBe(0);
    expect(offThread.turns).toBeGreaterThan(10);
  });
});

/**
 * One shim body to what a collection keeps of it: the decoded metrics, or the gap a bad body
 * earns. Pure, and free of anything that does not survive a structured clone, so it runs the
 * same on the decode thread (src/shim-decoder.ts) as on the main one.
 */
import type { ShimOutcome } from './correlate.ts';
import { decodeShimMetrics } from './kata-decode.ts';
import { PromParseError } from '../prom-text/index.ts';
import type { Hypervisor, KataRuntime } from './records.ts';

export interface ShimBodyInput {
  runtime: KataRuntime;
  hypervisor?: Hypervisor;
  maxSeries: number;
}

/** A body's outcome; a body that is not exposition text, or past a parser bound or budget, is a gap. */
export function decodeShimBody(body: Uint8Array, input: ShimBodyInput): ShimOutcome {
  try {
    const metrics = decodeShimMetrics(body, input.runtime, { hypervisor: input.hypervisor, limits: { maxSeries: input.maxSeries } });
    return { state: 'ok', metrics };
  } catch (error) {
    if (error instanceof PromParseError)
      return { state: 'failed', reason: error.kind === 'budget' ? 'shim_decode_budget' : 'shim_malformed' };
    throw error;
  }
}

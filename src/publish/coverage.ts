/** How much of the node the bridge sees first-hand: the landing page and --once summary use it. */

import type { NodeSnapshot } from '../translate/snapshot.ts';

export interface Coverage {
  pods: number;
  containers: number;
  firstHand: number;
  estimated: number;
  noValue: number;
  containerGaps: Record<string, number>;
  podGaps: Record<string, number>;
  sandboxes: Record<string, number>;
}

export function coverageOf(snapshot: NodeSnapshot): Coverage {
  const coverage: Coverage = {
    pods: snapshot.pods.length,
    containers: 0,
    firstHand: 0,
    estimated: 0,
    noValue: 0,
    containerGaps: {},
    podGaps: {},
    sandboxes: {},
  };
  const bump = (counts: Record<string, number>, key: string): void => {
    counts[key] = (counts[key] ?? 0) + 1;
  };
  for (const pod of snapshot.pods) {
    for (const reason of pod.gaps) bump(coverage.podGaps, reason);
    for (const container of pod.containers) {
      coverage.containers++;
      if (container.gap !== undefined) bump(coverage.containerGaps, container.gap);
      if (container.source === 'kubelet') coverage.firstHand++;
      else if (container.source === 'guest_estimate') coverage.estimated++;
      else coverage.noValue++;
    }
  }
  for (const sandbox of snapshot.sandboxes) bump(coverage.sandboxes, sandbox.state);
  return coverage;
}

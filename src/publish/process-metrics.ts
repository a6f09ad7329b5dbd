/**
 * The client library's default process and Node.js metrics, less the five that fail
 * `promtool check metrics` (node_exporter's output passes it clean, and so must ours):
 * three gauges named `_total` (each the sum of its by-type gauge that stays) and the event-loop
 * utilisation families named after their type (the event-loop lag gauges stay).
 */

import { collectDefaultMetrics, type Registry } from '@prometheus-io/client';

export const LINT_FAILING_DEFAULT_METRICS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
  'nodejs_eventloop_utilization_summary',
  'nodejs_eventloop_utilization_histogram',
] as const;

/**
 * The library samples event-loop utilisation on a timer for the two families removed here: the
 * longest interval Node accepts stops that work (a longer one would be clamped to 1 ms).
 */
const LONGEST_TIMER_MS = 2 ** 31 - 1;

export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, eventLoopUtilizationTimeout: LONGEST_TIMER_MS });
  for (const name of LINT_FAILING_DEFAULT_METRICS) registry.removeSingleMetric(name);
}

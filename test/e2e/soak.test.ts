/**
 * The soak (test/support/soak.ts; `npm run soak` runs it for 10 minutes) for 30 seconds of churn: the
 * real exporter process against the demo node with a pod created or deleted every 100 ms and a
 * scrape every second. Series come back to the baseline, memory stays bounded, and the exporter
 * logs nothing that churn does not explain. The 30 s is how long the churn runs, not an assertion.
 */

import { beforeAll, describe, expect, test } from 'vitest';
import { classifyLogLine, formatReport, runSoak, type SoakReport } from '../support/soak.ts';

const MIB = 2 ** 20;
const RSS_BOUND = 50 * MIB;
const HEAP_BOUND = 8 * MIB;

describe('soak: 30 s of pod churn against the real exporter process', () => {
  let report: SoakReport;

  beforeAll(async () => {
    report = await runSoak({
      durationMs: 30_000,
      poolMax: 30,
      rssBoundBytes: RSS_BOUND,
      heapBoundBytes: HEAP_BOUND,
      log: (line) => console.info(line),
    });
    console.info(formatReport(report));
  }, 400_000);

  test('the churn reached the exporter: more pods were published than the demo has', () => {
    expect(report.churn.added).toBeGreaterThan(20);
    expect(report.churn.removed).toBe(report.churn.added);
    expect(report.pods.max).toBeGreaterThan(report.pods.baseline);
    expect(report.series.max).toBeGreaterThan(report.series.baseline);
  });

  test('once the last churned pod is gone, the series are exactly the baseline ones', () => {
    expect(report.series.leaked).toEqual([]);
    expect(report.series.missing).toEqual([]);
    expect(report.series.end).toBe(report.series.baseline);
    expect(report.pods.end).toBe(report.pods.baseline);
    expect(report.counterSeries.end).toBe(report.counterSeries.baseline);
  });

  test('exporter RSS after a forced GC grows by less than the bound', () => {
    expect(report.rss.afterGc).toBe(true);
    expect(report.rss.startBytes).toBeGreaterThan(0);
    expect(report.rss.maxBytes).toBeGreaterThanOrEqual(report.rss.startBytes);
    expect(report.rss.growthBytes).toBeLessThan(RSS_BOUND);
  });

  test('the V8 heap in use after a forced GC grows by less than the bound: no retained objects per churned pod', () => {
    expect(report.heapUsed.startBytes).toBeGreaterThan(0);
    expect(report.heapUsed.growthBytes).toBeLessThan(HEAP_BOUND);
  });

  test('every scrape answered 200 and parsed', () => {
    expect(report.scrapes.failures).toEqual([]);
    expect(report.scrapes.total).toBeGreaterThan(20);
  });

  test('no unexpected log lines, and the exporter exits cleanly on SIGTERM', () => {
    expect(report.logs.unexpected).toEqual([]);
    expect(report.logs.expected['serving metrics']).toBe(1);
    expect(report.exitCode).toBe(0);
    expect(report.checks.filter((c) => !c.ok)).toEqual([]);
    expect(report.ok).toBe(true);
  });
});

describe('soak log classification', () => {
  const line = (fields: Record<string, unknown>) => JSON.stringify({ app: 'kata-metrics-bridge', time: 1, ...fields });

  test("a deleted pod's shim that is unreachable mid-scrape is expected churn", () => {
    expect(classifyLogLine(line({ level: 40, msg: 'shim scrape failed', reason: 'shim_unreachable', source: 'shims' })).kind).toBe(
      'expected',
    );
    expect(classifyLogLine(line({ level: 30, msg: 'serving metrics on http://127.0.0.1:1/metrics' })).kind).toBe('expected');
  });

  test('errors, other shim failures, unknown messages and non-JSON output are unexpected', () => {
    expect(classifyLogLine(line({ level: 50, msg: 'rendering metrics failed' })).kind).toBe('unexpected');
    expect(classifyLogLine(line({ level: 60, msg: 'serving metrics on x' })).kind).toBe('unexpected');
    expect(classifyLogLine(line({ level: 40, msg: 'shim scrape failed', reason: 'shim_timeout' })).kind).toBe('unexpected');
    expect(classifyLogLine(line({ level: 40, msg: 'cgroup hierarchy unreadable' })).kind).toBe('unexpected');
    expect(classifyLogLine(line({ level: 30, msg: 'something new' })).kind).toBe('unexpected');
    expect(classifyLogLine('TypeError: x is not a function').kind).toBe('unexpected');
    expect(classifyLogLine(JSON.stringify({ soak: 'gc', rss: 1 })).kind).toBe('soak');
  });
});

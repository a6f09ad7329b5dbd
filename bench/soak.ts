/**
 * `npm run soak`: pod churn against the real exporter process for 10 minutes (the engine and its
 * checks are test/support/soak.ts, which test/e2e/soak.test.ts runs for 30 s).
 *
 *   npm run soak                       # 10 minutes
 *   npm run soak -- --duration=30s --pool=30 --rss-bound-mib=50 --heap-bound-mib=8
 *
 * Exits non-zero when a check fails.
 */

import { pathToFileURL } from 'node:url';
import { parseDuration } from '../src/config.ts';
import { formatReport, runSoak, type SoakOptions } from '../test/support/soak.ts';

const MIB = 2 ** 20;

function parseArgv(argv: readonly string[]): SoakOptions {
  const options: SoakOptions = { durationMs: 10 * 60_000 };
  for (const arg of argv) {
    const match = /^--([a-z-]+)=(.*)$/.exec(arg);
    if (match === null)
      throw new Error(
        `soak: unknown argument "${arg}" (use --duration=10m, --pool=30, --churn-interval=100ms, --scrape-interval=1s, --rss-bound-mib=50, --heap-bound-mib=8, --seed=N)`,
      );
    const [, name, value] = match as unknown as [string, string, string];
    switch (name) {
      case 'duration':
        options.durationMs = parseDuration(value);
        break;
      case 'churn-interval':
        options.churnIntervalMs = parseDuration(value);
        break;
      case 'scrape-interval':
        options.scrapeIntervalMs = parseDuration(value);
        break;
      case 'pool':
        options.poolMax = Number.parseInt(value, 10);
        break;
      case 'rss-bound-mib':
        options.rssBoundBytes = Number(value) * MIB;
        break;
      case 'heap-bound-mib':
        options.heapBoundBytes = Number(value) * MIB;
        break;
      case 'seed':
        options.seed = Number.parseInt(value, 10);
        break;
      default:
        throw new Error(`soak: unknown flag --${name}`);
    }
  }
  if (!(options.durationMs > 0)) throw new Error('soak: --duration must be above 0');
  if (options.poolMax !== undefined && !(options.poolMax > 0)) throw new Error('soak: --pool must be a positive whole number');
  return options;
}

async function main(): Promise<number> {
  const options = parseArgv(process.argv.slice(2));
  const started = new Date();
  console.log(`soak started ${started.toISOString()}: ${options.durationMs / 1000} s of churn, node ${process.version}`);
  const report = await runSoak({ ...options, log: (line) => console.log(line) });
  console.log(formatReport(report));
  return report.ok ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
      process.exitCode = 2;
    },
  );
}

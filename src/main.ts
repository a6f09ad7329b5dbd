/** The process: flags → config → start; signals and exit codes. */

import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, parseCommandLine, type Config } from './config.ts';
import { Exporter, ListenError } from './exporter.ts';
import { createLogger, type Logger } from './log.ts';
import type { BuildInfo } from './publish/snapshot-renderer.ts';

function buildInfo(): BuildInfo {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return { version: pkg.version, revision: process.env.KATA_BRIDGE_REVISION ?? 'unknown', nodeVersion: process.version };
}

/** --once: one collection to stdout; non-zero when any source failed. */
async function runOnce(exporter: Exporter, config: Config, logger: Logger): Promise<number> {
  const ready = await exporter.startSources(config.collectDeadlineMs);
  if (!ready) logger.warn({ source: 'pods' }, 'no pod list from the API server yet: pods are reported from sandboxes only');
  const snapshot = await exporter.snapshot();
  process.stdout.write(await exporter.renderer.render(snapshot, 'text'));
  await exporter.close();
  const down = Object.entries(snapshot.sources)
    .filter(([, status]) => !status.up)
    .map(([source]) => source);
  if (down.length > 0) logger.error({ sources: down }, 'sources failed during the collection');
  return down.length > 0 ? 1 : 0;
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCommandLine(argv, process.env, existsSync);
    // A bad web config (YAML, keys, unreadable certificates) fails before anything starts.
    if (parsed.kind === 'run' && !parsed.config.once && parsed.config.webConfigFile !== undefined) {
      (await import('./publish/web-config.ts')).loadWebConfig(parsed.config.webConfigFile);
    }
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`kata-metrics-bridge: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (parsed.kind === 'help') {
    process.stdout.write(`${parsed.text}\n`);
    return 0;
  }
  const build = buildInfo();
  if (parsed.kind === 'version') {
    process.stdout.write(`kata-metrics-bridge ${build.version} (node ${build.nodeVersion})\n`);
    return 0;
  }
  let config = parsed.config;
  const logger = createLogger(config.logLevel);

  let closeLab: (() => Promise<void>) | undefined;
  let kubeConfig;
  if (config.demo) {
    const { startDemoNode } = await import('./lab/demo.ts');
    const demo = await startDemoNode(config, logger);
    config = demo.config;
    kubeConfig = demo.kubeConfig;
    closeLab = demo.close;
  }

  const exporter = new Exporter({ config, logger, build, kubeConfig });
  if (config.once) {
    const code = await runOnce(exporter, config, logger);
    await closeLab?.();
    return code;
  }

  await exporter.startSources();
  let address;
  try {
    address = await exporter.listen();
  } catch (error) {
    // A taken port, or a web config that changed between the check above and now.
    if (!(error instanceof ConfigError || error instanceof ListenError)) throw error;
    process.stderr.write(`kata-metrics-bridge: ${error.message}\n`);
    await exporter.close();
    await closeLab?.();
    return error instanceof ConfigError ? 2 : 1;
  }
  // Which workloads the isolation audit treats as untrusted (none: the audit is off).
  const audit = { namespaceSelector: config.auditNamespaceSelector?.text, podSelector: config.auditPodSelector?.text };
  logger.info(
    {
      address: address.address,
      port: address.port,
      path: config.telemetryPath,
      node: config.nodeName,
      demo: config.demo,
      tls: address.tls,
      audit,
    },
    `serving metrics on ${address.tls ? 'https' : 'http'}://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}${config.telemetryPath}`,
  );

  await new Promise<void>((resolve) => {
    let stopping = false;
    // Handlers stay installed: a repeated signal (a relaying wrapper such as tsx resends one it
    // has not seen acknowledged) must not cut the graceful shutdown short with exit 143.
    const stop = (signal: string) => {
      if (stopping) {
        logger.info({ signal }, 'already shutting down');
        return;
      }
      stopping = true;
      logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  await exporter.close();
  await closeLab?.();
  return 0;
}

/**
 * Exits once the event loop drains; if something still holds it open (a failed start-up leaves
 * half-started sources), exits anyway shortly after, so the process never lingers.
 */
function exitWith(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), EXIT_LINGER_MS).unref();
}

const EXIT_LINGER_MS = 2_000;

main(process.argv.slice(2)).then(exitWith, (error: unknown) => {
  process.stderr.write(`kata-metrics-bridge: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  exitWith(1);
});

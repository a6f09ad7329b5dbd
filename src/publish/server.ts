/** The HTTP endpoints: /metrics (text or OpenMetrics, gzip), /healthz, /readyz, a landing page and its /top.json. */

import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import express, { type Express, type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from '../log.ts';
import type { NodeSnapshot } from '../translate/snapshot.ts';
import { coverageOf } from './coverage.ts';
import { POD_TABLE_PATH, renderLandingPage } from './landing.ts';
import { RecentSnapshots, podTableJson } from './pod-table.ts';
import { CONTENT_TYPES, negotiateFormat } from './exposition-format.ts';
import type { SnapshotRenderer } from './snapshot-renderer.ts';

const gzipAsync = promisify(gzip);

export interface ExporterCore {
  /** A snapshot no older than the single-flight window; never rejects. */
  snapshot(): Promise<NodeSnapshot>;
  latest(): NodeSnapshot | undefined;
  isReady(): boolean;
}

export interface AppOptions {
  core: ExporterCore;
  renderer: SnapshotRenderer;
  telemetryPath: string;
  nodeName: string;
  version: string;
  logger: Logger;
  /** Runs before every route: response headers and basic auth from the web config (listener.ts). */
  middleware?: RequestHandler[];
}

function acceptsGzip(req: Request): boolean {
  return /\bgzip\b/i.test(req.headers['accept-encoding'] ?? '');
}

export function createApp(options: AppOptions): Express {
  const { core, renderer, logger } = options;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  for (const handler of options.middleware ?? []) app.use(handler);

  app.get(options.telemetryPath, async (req: Request, res: Response) => {
    try {
      const snapshot = await core.snapshot();
      const format = negotiateFormat(req.headers.accept);
      const text = await renderer.render(snapshot, format);
      res.setHeader('Content-Type', CONTENT_TYPES[format]);
      res.setHeader('Cache-Control', 'no-store');
      if (acceptsGzip(req)) {
        res.setHeader('Content-Encoding', 'gzip');
        res.setHeader('Vary', 'Accept-Encoding');
        res.end(await gzipAsync(text));
      } else {
        res.end(text);
      }
    } catch (error) {
      logger.error({ err: error, path: options.telemetryPath }, 'rendering metrics failed');
      res.status(500).type('text/plain').send('collection failed; see the exporter log\n');
    }
  });

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });

  app.get('/readyz', (_req, res) => {
    const ready = core.isReady();
    res
      .status(ready ? 200 : 503)
      .type('text/plain')
      .send(ready ? 'ready\n' : 'waiting for the first pod list from the API server\n');
  });

  // The snapshot before the current one, so the pod table has rates.
  const recent = new RecentSnapshots();

  // The landing page's table: the snapshot /metrics answers from, through the same single flight.
  app.get(`/${POD_TABLE_PATH}`, async (_req, res) => {
    try {
      const table = recent.observe(await core.snapshot());
      res.setHeader('Cache-Control', 'no-store');
      res.type('application/json').send(podTableJson(table));
    } catch (error) {
      logger.error({ err: error, path: `/${POD_TABLE_PATH}` }, 'rendering the pod table failed');
      res.status(500).type('text/plain').send('collection failed; see the exporter log\n');
    }
  });

  app.get('/', (_req, res) => {
    const latest = core.latest();
    res.type('html').send(
      renderLandingPage(
        {
          nodeName: options.nodeName,
          version: options.version,
          telemetryPath: options.telemetryPath,
          ready: core.isReady(),
          takenAt: latest === undefined ? undefined : new Date(latest.takenAtMs).toISOString(),
        },
        latest === undefined ? undefined : coverageOf(latest),
        latest === undefined ? undefined : recent.observe(latest),
      ),
    );
  });

  return app;
}

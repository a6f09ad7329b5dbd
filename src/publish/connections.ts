/**
 * The lifetime of the metrics port's connections: how long a request may take to arrive, and a
 * shutdown that ends within a bounded time whatever clients do (a client trickling its headers
 * must not hold SIGTERM past the DaemonSet's terminationGracePeriodSeconds of 10 s).
 */

import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Server options: headers within 10 s and the whole request within 15 s (a scrape is a bodiless
 * GET), checked every second rather than Node's 30 s.
 */
export const REQUEST_BOUNDS = { headersTimeout: 10_000, requestTimeout: 15_000, connectionsCheckingInterval: 1_000 } as const;

/** How long answers in flight may take at shutdown before their connections are cut. */
export const SHUTDOWN_GRACE_MS = 3_000;

export interface ClosableServer {
  /** Connections open now, TLS handshakes and half-sent requests included. */
  readonly openConnections: number;
  /** Stops accepting, closes idle connections, and after `graceMs` destroys the rest. */
  close(graceMs?: number): Promise<void>;
}

/** Tracks the server's sockets from the TCP connection on (before TLS and HTTP see them). */
export function closableServer(server: Server): ClosableServer {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return {
    get openConnections() {
      return sockets.size;
    },
    close: (graceMs = SHUTDOWN_GRACE_MS) =>
      new Promise<void>((resolve) => {
        const cut = setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}

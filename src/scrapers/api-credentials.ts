/**
 * How requests to the API server are addressed and authenticated.
 *
 * In a cluster (the DaemonSet) this is what client-go's rest.InClusterConfig does: the server
 * from KUBERNETES_SERVICE_HOST/PORT, the service account's token (re-read for every request,
 * since the kubelet rotates it) and its CA. That is three small files and two variables, so it
 * is done here. A kubeconfig (--kubeconfig, or a KubeConfig object from the lab) goes through
 * @kubernetes/client-node, which handles everything a kubeconfig may hold (client certificates,
 * exec plugins, OIDC). The library is loaded only then: importing it costs ~80 MiB of resident
 * memory (its KubeConfig pulls in every generated API model), more than half of the exporter's
 * budget on a large node (docs/performance.md).
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import type { KubeConfig } from '@kubernetes/client-node';
import { FileTooLarge, readTextSync } from './pseudo-fs.ts';
import { SourceError } from './source-error.ts';

/** What one request carries. The caller owns the dispatcher and destroys it after the request. */
export interface PreparedRequest {
  headers: Record<string, string>;
  dispatcher: Dispatcher;
}

export interface ApiCredentials {
  /** The API server's base URL, without a trailing slash. */
  readonly server: string;
  /** Where the configuration came from, for messages. */
  readonly source: string;
  prepare(url: string): Promise<PreparedRequest>;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** A token or CA bundle larger than this is not one. */
const MAX_CREDENTIAL_BYTES = 1024 * 1024;

function readCredential(path: string, what: string): string {
  try {
    return readTextSync(path, MAX_CREDENTIAL_BYTES);
  } catch (error) {
    if (error instanceof FileTooLarge) {
      throw new SourceError(
        'unauthorized',
        path,
        `the service account ${what} is larger than 1 MiB`,
        'check the mounted service account files',
      );
    }
    throw new SourceError(
      'unauthorized',
      path,
      `cannot read the service account ${what}: ${(error as Error).message}`,
      'mount the service account token (automountServiceAccountToken) or pass --kubeconfig',
    );
  }
}

/**
 * The in-cluster configuration, or a SourceError (at start-up) saying what is missing. The token
 * and CA are read for every request: a rotated token or CA is used as soon as it is on disk.
 */
export function inClusterCredentials(
  env: Readonly<Record<string, string | undefined>>,
  serviceAccountDir: string = SERVICE_ACCOUNT_DIR,
): ApiCredentials {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new SourceError(
      'io',
      'in-cluster config',
      'KUBERNETES_SERVICE_HOST/PORT are not set',
      'run inside a pod with a service account, or pass --kubeconfig',
    );
  }
  const tokenFile = join(serviceAccountDir, 'token');
  const caFile = join(serviceAccountDir, 'ca.crt');
  // Fail at start-up, not at the first request, when the service account is not mounted.
  readCredential(tokenFile, 'token');
  readCredential(caFile, 'CA bundle');
  const server = `https://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
  return {
    server,
    source: `the in-cluster service account (${serviceAccountDir})`,
    prepare: async () => {
      const token = readCredential(tokenFile, 'token').trim();
      const ca = readCredential(caFile, 'CA bundle');
      return { headers: { authorization: `Bearer ${token}` }, dispatcher: new Agent({ connect: { ca } }) };
    },
  };
}

type ClientNode = typeof import('@kubernetes/client-node');
let clientNode: ClientNode | undefined;

/** @kubernetes/client-node, loaded on first use (synchronously: require of an ES module). */
function loadClientNode(): ClientNode {
  return (clientNode ??= createRequire(import.meta.url)('@kubernetes/client-node') as ClientNode);
}

/** A kubeconfig file, loaded with @kubernetes/client-node; a SourceError names the file when it cannot be. */
export function kubeconfigFileCredentials(path: string): ApiCredentials {
  const kc = new (loadClientNode().KubeConfig)();
  try {
    kc.loadFromFile(path);
  } catch (error) {
    throw new SourceError(
      'io',
      path,
      `cannot load the kubeconfig: ${(error as Error).message}`,
      'check the --kubeconfig path and its YAML',
    );
  }
  return kubeConfigCredentials(kc, `--kubeconfig ${path}`);
}

/** A loaded KubeConfig: its current cluster, authenticated by KubeConfig.applySecurityAuthentication. */
export function kubeConfigCredentials(kc: KubeConfig, source: string): ApiCredentials {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new SourceError('io', source, 'no current cluster with a server URL', 'set current-context in the kubeconfig');
  return {
    server: server.replace(/\/+$/, ''),
    source,
    prepare: async (url) => {
      const { RequestContext, HttpMethod } = loadClientNode();
      const ctx = new RequestContext(url, HttpMethod.GET);
      await kc.applySecurityAuthentication(ctx);
      return { headers: ctx.getHeaders(), dispatcher: ctx.getDispatcher() ?? new Agent() };
    },
  };
}

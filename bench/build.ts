/**
 * Compiles the benchmark's exporter and baseline children, with the src/ modules they import, the
 * way deploy/Dockerfile builds the image: tsc with the same flags (type erasure plus .ts → .js
 * import rewriting) into a temporary directory, once per bench run. The children then run as
 * plain `node --enable-source-maps`, like the image's ENTRYPOINT, so RSS and CPU are the
 * product's, not tsx's.
 *
 * The temporary directory gets a copy of package.json (for "type": "module") and a symlink to the
 * project's node_modules, so bare imports resolve as in the image. It is removed at exit.
 *
 * With `tree` (another checkout of the project, e.g. `git archive main` unpacked), this tree's
 * bench/ is compiled against that tree's src/: the same children and protocol, the other code.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { daemonSetNodeOptions, daemonSetRuntimeEnv } from '../test/support/daemonset-node-options.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The Dockerfile's tsc flags, minus --rootDir / --outDir and the entry point. */
export const DOCKERFILE_TSC_FLAGS = [
  '--target',
  'ES2023',
  '--module',
  'NodeNext',
  '--moduleResolution',
  'NodeNext',
  '--lib',
  'ES2023',
  '--types',
  'node',
  '--strict',
  '--noUncheckedIndexedAccess',
  '--noImplicitOverride',
  '--noFallthroughCasesInSwitch',
  '--esModuleInterop',
  '--skipLibCheck',
  '--resolveJsonModule',
  '--isolatedModules',
  '--verbatimModuleSyntax',
  '--rewriteRelativeImportExtensions',
  '--sourceMap',
];

/** The DaemonSet manifest of this tree, or of another checkout. */
function manifestOf(tree?: string): string | undefined {
  return tree === undefined ? undefined : join(resolve(tree), 'deploy', 'kubernetes', 'base', 'daemonset.yaml');
}

/**
 * The node flags the exporter runs with in a cluster: the image's ENTRYPOINT flag and the
 * DaemonSet's NODE_OPTIONS (read from the manifest of this tree, or of `tree`, so the bench
 * cannot drift from it).
 */
export function imageNodeFlags(tree?: string): string[] {
  return ['--enable-source-maps', ...daemonSetNodeOptions(manifestOf(tree))];
}

/** The DaemonSet's literal environment (e.g. MALLOC_ARENA_MAX), which the image's process runs with. */
export function imageEnv(tree?: string): Record<string, string> {
  return daemonSetRuntimeEnv(manifestOf(tree));
}

export interface CompiledBench {
  /** Directory holding bench/*.js and src/**.js, laid out like the project. */
  dir: string;
  /** Absolute path of a compiled bench child, e.g. file('exporter-child') → …/bench/exporter-child.js */
  file(name: string): string;
}

const compiled = new Map<string, CompiledBench>();

export function compileBenchChildren(tree?: string): CompiledBench {
  const key = tree === undefined ? '' : resolve(tree);
  const cached = compiled.get(key);
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'kata-bridge-bench-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  let source = root;
  if (tree !== undefined) {
    // This tree's bench/ over the other tree's src/, in a scratch tree of its own.
    source = join(dir, 'source');
    cpSync(join(key, 'src'), join(source, 'src'), { recursive: true });
    cpSync(join(root, 'bench'), join(source, 'bench'), { recursive: true });
    copyFileSync(join(key, 'package.json'), join(source, 'package.json'));
    symlinkSync(join(root, 'node_modules'), join(source, 'node_modules'), 'dir');
  }
  const out = join(dir, 'out');
  const started = Date.now();
  execFileSync(
    process.execPath,
    [
      join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      ...DOCKERFILE_TSC_FLAGS,
      '--rootDir',
      source,
      '--outDir',
      out,
      join(source, 'bench', 'exporter-child.ts'),
      join(source, 'bench', 'baseline-child.ts'),
    ],
    { cwd: source, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  copyFileSync(join(source, 'package.json'), join(out, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(out, 'node_modules'), 'dir');
  process.stderr.write(
    `compiled the exporter and baseline children${tree === undefined ? '' : ` of ${key}`} with the Dockerfile's tsc flags in ${Date.now() - started} ms\n`,
  );
  const bench: CompiledBench = { dir: out, file: (name) => join(out, 'bench', `${name}.js`) };
  compiled.set(key, bench);
  return bench;
}

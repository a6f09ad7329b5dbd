/**
 * Compiles the benchmark's exporter and baseline children, with the src/ modules they import, the
 * way deploy/Dockerfile builds the image: tsc with the same flags (type erasure plus .ts → .js
 * import rewriting) into a temporary directory, once per bench run. The children then run as
 * plain `node --enable-source-maps`, like the image's ENTRYPOINT, so RSS and CPU are the
 * product's, not tsx's.
 *
 * The temporary directory gets a copy of package.json (for "type": "module") and a symlink to the
 * project's node_modules, so bare imports resolve as in the image. It is removed at exit.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { daemonSetNodeOptions } from '../test/support/daemonset-node-options.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The Dockerfile's tsc flags, minus --rootDir / --outDir and the entry point. */
export const DOCKERFILE_TSC_FLAGS = [
  '--target', 'ES2023', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--lib', 'ES2023', '--types', 'node',
  '--strict', '--noUncheckedIndexedAccess', '--noImplicitOverride', '--noFallthroughCasesInSwitch',
  '--esModuleInterop', '--skipLibCheck', '--resolveJsonModule', '--isolatedModules', '--verbatimModuleSyntax',
  '--rewriteRelativeImportExtensions', '--sourceMap',
];

/**
 * The node flags the exporter runs with in a cluster: the image's ENTRYPOINT flag and the
 * DaemonSet's NODE_OPTIONS (read from the manifest, so the bench cannot drift from it).
 */
export const IMAGE_NODE_FLAGS = ['--enable-source-maps', ...daemonSetNodeOptions()];

export interface CompiledBench {
  /** Directory holding bench/*.js and src/**.js, laid out like the project. */
  dir: string;
  /** Absolute path of a compiled bench child, e.g. file('exporter-child') → …/bench/exporter-child.js */
  file(name: string): string;
}

let compiled: CompiledBench | undefined;

export function compileBenchChildren(): CompiledBench {
  if (compiled) return compiled;
  const dir = mkdtempSync(join(tmpdir(), 'kata-bridge-bench-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const started = Date.now();
  execFileSync(
    process.execPath,
    [
      join(root, 'node_modules', 'typescript', 'bin', 'tsc'),
      ...DOCKERFILE_TSC_FLAGS,
      '--rootDir', root,
      '--outDir', dir,
      join(root, 'bench', 'exporter-child.ts'),
      join(root, 'bench', 'baseline-child.ts'),
    ],
    { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  copyFileSync(join(root, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  process.stderr.write(`compiled the exporter and baseline children with the Dockerfile's tsc flags in ${Date.now() - started} ms\n`);
  compiled = { dir, file: (name) => join(dir, 'bench', `${name}.js`) };
  return compiled;
}

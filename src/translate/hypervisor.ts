/**
 * Which VMM runs a sandbox, and whether its shim may be asked for /metrics.
 * Pure: works on state-file strings and on process records already read from /proc.
 */

import type { HostProcess, Hypervisor, SandboxRecord } from './records.ts';

// ─── hypervisor from a state file ─────────────────────────────────────────────

/**
 * Type strings as the runtimes persist them: Go `HypervisorState.Type` / `Config.HypervisorType`
 * ("qemu", "clh", "firecracker"), runtime-rs `hypervisor.hypervisor_type` ("qemu", "dragonball",
 * "firecracker", and "cloud-hypervisor" or "clh" depending on the release).
 * Anything else (acrn, stratovirt, remote, mock) is not one we can vouch for.
 */
const TYPE_NAMES: Record<string, Hypervisor> = {
  qemu: 'qemu',
  clh: 'cloud-hypervisor',
  'cloud-hypervisor': 'cloud-hypervisor',
  firecracker: 'firecracker',
  dragonball: 'dragonball',
};

/** Undefined when the string names no hypervisor we know (the caller then falls back). */
export function hypervisorFromType(type: string | undefined): Hypervisor | undefined {
  if (type === undefined) return undefined;
  return Object.hasOwn(TYPE_NAMES, type.toLowerCase()) ? TYPE_NAMES[type.toLowerCase()] : undefined;
}

// ─── hypervisor from host processes ───────────────────────────────────────────

/** Go Firecracker truncates the sandbox id to 32 characters (unix socket path limit, fc.go truncateID). */
const FC_ID_LENGTH = 32;

function mentionsToken(text: string, token: string): boolean {
  // The id must stand alone: `sandbox-<id>,debug-threads=on`, `/run/vc/vm/<id>/clh-api.sock`.
  for (let at = text.indexOf(token); at !== -1; at = text.indexOf(token, at + 1)) {
    const before = at === 0 ? '' : text.charAt(at - 1);
    const after = text.charAt(at + token.length);
    if (!/[A-Za-z0-9]/.test(before) && !/[A-Za-z0-9]/.test(after)) return true;
  }
  return false;
}

/**
 * Whether a command line names the sandbox: QEMU `-name sandbox-<id>`, Cloud Hypervisor
 * `--api-socket /run/vc/vm/<id>/clh-api.sock` or `/run/kata/<id>/ch-api.sock`, the shim `-id <id>`,
 * Go Firecracker paths `/run/vc/firecracker/<id[:32]>/root/...`.
 */
export function cmdlineMentionsSandbox(cmdline: readonly string[], sandboxId: string): boolean {
  if (sandboxId === '' || cmdline.length === 0) return false;
  const text = cmdline.join(' ');
  if (mentionsToken(text, sandboxId)) return true;
  return sandboxId.length > FC_ID_LENGTH && mentionsToken(text, sandboxId.slice(0, FC_ID_LENGTH));
}

function basename(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash === -1 ? path : path.slice(slash + 1);
}

/** The shim binary of both runtimes is `containerd-shim-kata-v2` (comm truncated to `containerd-shim`). */
export function isKataShim(process: HostProcess): boolean {
  const exe = basename(process.cmdline[0] ?? '');
  return exe.startsWith('containerd-shim-kata') || (exe === '' && process.comm === 'containerd-shim');
}

/**
 * The hypervisor a single process is, if any. The executable name wins over comm, which the
 * kernel cuts to 15 characters (`qemu-system-x86`, `cloud-hyperviso`).
 */
export function hypervisorOfProcess(process: HostProcess): Hypervisor | undefined {
  const exe = basename(process.cmdline[0] ?? '');
  const name = exe !== '' ? exe : process.comm;
  if (name.startsWith('qemu-system-') || name === 'qemu-kvm') return 'qemu';
  if (name === 'cloud-hypervisor' || name === 'cloud-hyperviso') return 'cloud-hypervisor';
  if (name === 'firecracker') return 'firecracker';
  // Dragonball is a library inside the runtime-rs shim: its vCPU threads are named db_vcpuN.
  if (isKataShim(process) && process.threadNames.some((t) => /^db_vcpu\d+$/.test(t))) return 'dragonball';
  return undefined;
}

/**
 * The one hypervisor the sandbox's processes show, with its pid. Undefined when none is seen or
 * when they disagree: a guess would feed the shim safety rule.
 */
export function hypervisorFromProcesses(processes: readonly HostProcess[]): { hypervisor: Hypervisor; pid: number } | undefined {
  let found: { hypervisor: Hypervisor; pid: number } | undefined;
  for (const process of processes) {
    const hypervisor = hypervisorOfProcess(process);
    if (hypervisor === undefined) continue;
    if (found !== undefined && found.hypervisor !== hypervisor) return undefined;
    found ??= { hypervisor, pid: process.pid };
  }
  return found;
}

// ─── the VM's configured memory, from the VMM's command line ───────────────────

/** Above this a parsed size is a misread, not a VM (16 TiB). */
const MAX_VM_MEMORY_BYTES = 16 * 2 ** 40;
const SIZE_UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** `2048M`, `2G`, `512` (in `defaultUnit`) → bytes; undefined when it is not a sane size. */
function parseSize(text: string | undefined, defaultUnit: number): number | undefined {
  const match = /^(\d+(?:\.\d+)?)([KMGT]?)(?:i?B)?$/i.exec(text ?? '');
  if (match === null) return undefined;
  const unit = match[2] === '' ? defaultUnit : SIZE_UNITS[match[2]!.toUpperCase()]!;
  const bytes = Math.round(Number(match[1]) * unit);
  return bytes > 0 && bytes <= MAX_VM_MEMORY_BYTES ? bytes : undefined;
}

/** The value of `flag` (`-m 2048M` or `-m=2048M`), the first time it appears. */
function optionValue(cmdline: readonly string[], flag: string): string | undefined {
  for (let i = 0; i < cmdline.length; i++) {
    const arg = cmdline[i]!;
    if (arg === flag) return cmdline[i + 1];
    if (arg.startsWith(`${flag}=`)) return arg.slice(flag.length + 1);
  }
  return undefined;
}

/** `size=2048M,slots=10` → `2048M`; a bare first part counts as the size when `bareIsSize`. */
function sizeParameter(value: string | undefined, bareIsSize: boolean): string | undefined {
  const parts = (value ?? '').split(',');
  const named = parts.find((part) => part.startsWith('size='));
  if (named !== undefined) return named.slice('size='.length);
  return bareIsSize && parts[0] !== '' && !parts[0]!.includes('=') ? parts[0] : undefined;
}

/**
 * The boot memory a VMM was started with, as the host sees it: QEMU `-m [size=]<n>[,slots,maxmem]`
 * (MiB without a suffix), Cloud Hypervisor `--memory size=<n>` (bytes without a suffix). Kata's Go
 * runtime starts Cloud Hypervisor and Firecracker through their API and Dragonball has no process
 * of its own, so those name none here: the state file's configured size is the fallback
 * (kata-state.ts). Memory hotplugged later for container limits is in neither.
 */
export function vmMemoryFromCmdline(process: HostProcess): number | undefined {
  const hypervisor = hypervisorOfProcess(process);
  if (hypervisor === 'qemu') return parseSize(sizeParameter(optionValue(process.cmdline, '-m'), true), 2 ** 20);
  if (hypervisor === 'cloud-hypervisor') return parseSize(sizeParameter(optionValue(process.cmdline, '--memory'), false), 1);
  return undefined;
}

// ─── the shim safety rule ─────────────────────────────────────────────────────

/** `--shim.runtime-rs`. */
export type ShimScrapeMode = 'safe' | 'all' | 'none';

export type ShimSkipReason = 'shim_unsafe_runtime' | 'shim_disabled' | 'shim_socket_missing';

export type ShimScrapeDecision = { scrape: true } | { scrape: false; reason: ShimSkipReason; detail: string };

/** runtime-rs hypervisors whose shim survives GET /metrics (Dragonball works, CLH returns an error). */
const SAFE_RS_HYPERVISORS: ReadonlySet<Hypervisor> = new Set(['dragonball', 'cloud-hypervisor']);

const HYPERVISOR_LABEL: Record<Hypervisor, string> = {
  qemu: 'QEMU',
  'cloud-hypervisor': 'Cloud Hypervisor',
  firecracker: 'Firecracker',
  dragonball: 'Dragonball',
  unknown: 'unknown',
};

/**
 * Whether the shim of a sandbox may be scraped. Go shims always; runtime-rs shims with QEMU or
 * Firecracker abort on GET /metrics and take the pod down (Kata issue 13708), so under `safe` only
 * hypervisors known to survive it are asked, and an unknown one is treated as unsafe.
 */
export function shimScrapeDecision(
  sandbox: Pick<SandboxRecord, 'runtime' | 'hypervisor' | 'socketPath'>,
  mode: ShimScrapeMode,
): ShimScrapeDecision {
  // Checked first: no flag can make a missing socket answer, so the reason must not suggest one.
  if (sandbox.socketPath === undefined) {
    return {
      scrape: false,
      reason: 'shim_socket_missing',
      detail:
        sandbox.runtime === 'go'
          ? 'no shim-monitor.sock in the sandbox directory: the shim is starting or stopping, or is Kata < 2.2 (abstract sockets, unsupported)'
          : 'no shim-monitor.sock in the sandbox directory: the shim is starting or stopping, or runtime-rs is older than 3.2 (no /metrics)',
    };
  }
  if (sandbox.runtime === 'go' || mode === 'all') return { scrape: true };
  if (mode === 'none') {
    return {
      scrape: false,
      reason: 'shim_disabled',
      detail: 'runtime-rs shims are not scraped under --shim.runtime-rs=none; use safe or all to scrape them',
    };
  }
  if (SAFE_RS_HYPERVISORS.has(sandbox.hypervisor)) return { scrape: true };
  const why =
    sandbox.hypervisor === 'unknown'
      ? 'its hypervisor could not be identified (no readable state.json, no recognised VMM process) and may be QEMU or Firecracker, where'
      : `on ${HYPERVISOR_LABEL[sandbox.hypervisor]}`;
  return {
    scrape: false,
    reason: 'shim_unsafe_runtime',
    detail:
      `runtime-rs sandbox not scraped under --shim.runtime-rs=safe: ${why} GET /metrics aborts the shim ` +
      'and kills the pod (Kata issue 13708, fixed by PR 13707). ' +
      'Set --shim.runtime-rs=all only once every node runs a Kata release with that fix.',
  };
}

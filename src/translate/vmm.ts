/**
 * Which process of a sandbox's cgroups is its VMM, from its comm alone (pure). The names are the
 * ones sandbox discovery knows (hypervisor.ts); Dragonball runs inside the runtime-rs shim, whose
 * comm the kernel cuts to `containerd-shim`.
 */
import { hypervisorOfProcess } from './hypervisor.ts';
import type { Hypervisor } from './records.ts';

const SHIM_COMM = 'containerd-shim';

/** Whether a process with this comm is the VMM of a sandbox run by `hypervisor`. */
export function isVmmComm(comm: string, hypervisor: Hypervisor): boolean {
  const name = comm.trim();
  if (hypervisor === 'dragonball') return name === SHIM_COMM;
  const seen = hypervisorOfProcess({ pid: 0, comm: name, cmdline: [], threadNames: [] });
  return seen !== undefined && (hypervisor === 'unknown' || seen === hypervisor);
}

/** Parses `cgroup.procs`: one pid per line; at most `max` of them, anything else skipped. */
export function parseCgroupProcs(text: string, max: number): number[] {
  const pids: number[] = [];
  for (const line of text.split('\n')) {
    if (pids.length >= max) break;
    const value = line.trim();
    if (/^[1-9]\d{0,9}$/.test(value)) pids.push(Number(value));
  }
  return pids;
}

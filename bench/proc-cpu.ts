/**
 * CPU accounting from /proc (Linux) for the benchmarks: a steadier cost measure on a shared
 * machine than wall clock. Functions return NaN (or nothing) where /proc is not available.
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** Fields of /proc/<pid>/stat from field 3 (state) on, or undefined when the process is gone. */
export function statFields(pid: number | 'self'): string[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ');
  } catch { return undefined; }
}

/** utime+stime of one process, ms. */
export function cpuOf(pid: number): number {
  const f = statFields(pid);
  return f ? (Number(f[11]) + Number(f[12])) * TICK_MS : NaN;
}

/** cutime+cstime of this process (its reaped children), ms. */
export function reapedChildrenCpu(): number {
  const f = statFields('self');
  return f ? (Number(f[13]) + Number(f[14])) * TICK_MS : NaN;
}

/** Live child pids of `pid` (all its threads' children). */
export function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) =>
      readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter(Boolean).map(Number));
  } catch { return []; }
}

/** Calls `visit` for `pid` and each of its live descendants (a process that is gone is skipped). */
function eachInTree(pid: number, visit: (pid: number, stat: string[]) => void): void {
  const f = statFields(pid);
  if (!f) return;
  visit(pid, f);
  for (const c of childrenOf(pid)) eachInTree(c, visit);
}

/** utime+stime (ms) of `pid` and all its live descendants. */
export function treeCpuMs(pid: number): number {
  let total = 0;
  eachInTree(pid, (_p, f) => { total += (Number(f[11]) + Number(f[12])) * TICK_MS; });
  return total;
}

export interface TreeCpuSplit { userMs: number; systemMs: number; voluntarySwitches: number; involuntarySwitches: number }

/** user and system CPU (ms) and context switches of `pid` and its live descendants (all threads). */
export function treeCpuSplit(pid: number): TreeCpuSplit {
  const out: TreeCpuSplit = { userMs: 0, systemMs: 0, voluntarySwitches: 0, involuntarySwitches: 0 };
  eachInTree(pid, (p, f) => {
    out.userMs += Number(f[11]) * TICK_MS;
    out.systemMs += Number(f[12]) * TICK_MS;
    try {
      for (const t of readdirSync(`/proc/${p}/task`)) {
        const status = readFileSync(`/proc/${p}/task/${t}/status`, 'utf8');
        out.voluntarySwitches += Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1] ?? 0);
        out.involuntarySwitches += Number(/^nonvoluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1] ?? 0);
      }
    } catch { /* gone meanwhile */ }
  });
  return out;
}

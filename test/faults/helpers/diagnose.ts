/**
 * What a fault test prints when a fleet does not finish: the registrar's voucher jobs (a `pending`
 * job nobody works on answers 202 to every retry of its PVR), which pledges are still running, and
 * the services' warning and error log lines. Read-only; safe to call while the fleet runs.
 */
import { DOMAIN, REGISTRAR_PREFIX, type FaultStack } from './stack.ts';

export interface JobView { digest: string; serial?: string; status?: string; attempts?: number; ageSeconds?: number; ttlSeconds: number }

/** Every voucher job the registrar holds, oldest first. */
export async function voucherJobs(stack: FaultStack): Promise<JobView[]> {
  const out: JobView[] = [];
  const redis = stack.inspect();
  for (const key of await stack.keys(`${REGISTRAR_PREFIX}{${DOMAIN}}:job:*`)) {
    const [raw, ttl] = await Promise.all([redis.get(key), redis.ttl(key)]);
    let job: { serial?: string; status?: string; attempts?: number; updatedAt?: string } = {};
    try { job = JSON.parse(raw ?? '{}') as typeof job; } catch { /* shown as unknown */ }
    const age = job.updatedAt ? Math.round((Date.now() - Date.parse(job.updatedAt)) / 100) / 10 : undefined;
    out.push({ digest: key.slice(key.lastIndexOf(':') + 1, key.lastIndexOf(':') + 13), ttlSeconds: ttl,
      ...(job.serial ? { serial: job.serial } : {}), ...(job.status ? { status: job.status } : {}),
      ...(job.attempts !== undefined ? { attempts: job.attempts } : {}), ...(age !== undefined ? { ageSeconds: age } : {}) });
  }
  return out.sort((a, b) => (b.ageSeconds ?? 0) - (a.ageSeconds ?? 0));
}

/** Warning and error log lines of both services (pino levels ≥ 40), newest last. */
export function serviceWarnings(stack: FaultStack, max = 30): string[] {
  const lines: string[] = [];
  for (const svc of [stack.masa, stack.registrar]) {
    for (const e of svc.logs()) {
      if (typeof e['level'] === 'number' && e['level'] >= 40) {
        lines.push(`${svc.kind} ${new Date(Number(e['time'] ?? 0)).toISOString().slice(11, 23)} ${String(e['msg'] ?? '')} ${JSON.stringify({ serial: e['serial'], err: e['err'], code: e['code'], reason: e['reason'] })}`);
      }
    }
  }
  return lines.sort((a, b) => a.slice(a.indexOf(' ') + 1).localeCompare(b.slice(b.indexOf(' ') + 1))).slice(-max);
}

/** Tracks which fleet indices have started and not finished (wrap the fleet's secureElement/onResult). */
export class InFlight {
  readonly #started = new Map<number, number>();
  started(i: number): void { this.#started.set(i, Date.now()); }
  finished(i: number): void { this.#started.delete(i); }
  list(): Array<{ index: number; runningSeconds: number }> {
    return [...this.#started].map(([index, t]) => ({ index, runningSeconds: Math.round((Date.now() - t) / 100) / 10 }));
  }
}

export async function diagnosis(stack: FaultStack, inFlight?: InFlight): Promise<string> {
  const jobs = await voucherJobs(stack).catch((e: Error) => `unreadable: ${e.message}`);
  return JSON.stringify({ inFlight: inFlight?.list(), unfinishedJobs: Array.isArray(jobs) ? jobs.filter((j) => j.status !== 'issued') : jobs,
    masaRunning: stack.masa.running, registrarRunning: stack.registrar.running, warnings: serviceWarnings(stack) }, null, 1);
}

/**
 * Read models for the console, computed from the registrar store. The store has no aggregate
 * queries (and a registrar serves one site: thousands of pledges, not millions), so the console
 * pages through `listPledges` (newest update first) with a hard cap and caches the snapshot for a
 * moment, so that several operators polling every few seconds cost one scan.
 */
import { PLEDGE_STATES, type PledgeRecord, type PledgeState, type RegistrarStore } from '../store/types.ts';

/** Most pledges the console scans for one snapshot. */
export const SCAN_CAP = 20_000;
const PAGE = 1000;

export interface Snapshot {
  at: Date;
  pledges: PledgeRecord[];
  /** True when SCAN_CAP cut the scan short (older pledges are not shown). */
  truncated: boolean;
}

export class SnapshotCache {
  #cached: { snap: Snapshot; until: number } | undefined;
  #pending: Promise<Snapshot> | undefined;
  constructor(private readonly store: RegistrarStore, private readonly now: () => Date, private readonly ttlMs = 1000) {}

  async get(): Promise<Snapshot> {
    const now = this.now();
    if (this.#cached && now.getTime() < this.#cached.until) return this.#cached.snap;
    this.#pending ??= this.#scan(now).finally(() => { this.#pending = undefined; });
    return this.#pending;
  }

  /** Forget the snapshot after an operator action so the next page shows its effect. */
  invalidate(): void { this.#cached = undefined; }

  async #scan(now: Date): Promise<Snapshot> {
    const pledges: PledgeRecord[] = [];
    let truncated = false;
    for (let offset = 0; ; offset += PAGE) {
      const page = await this.store.listPledges({ offset, limit: PAGE });
      pledges.push(...page);
      if (page.length < PAGE) break;
      if (pledges.length >= SCAN_CAP) { truncated = true; break; }
    }
    const snap = { at: now, pledges, truncated };
    this.#cached = { snap, until: now.getTime() + this.ttlMs };
    return snap;
  }
}

export function countByState(pledges: readonly PledgeRecord[]): Record<PledgeState, number> {
  const out = Object.fromEntries(PLEDGE_STATES.map((s) => [s, 0])) as Record<PledgeState, number>;
  for (const p of pledges) out[p.state]++;
  return out;
}

/**
 * Enrollments per minute over the last `minutes` minutes, oldest bucket first. A pledge counts in
 * the minute of its latest LDevID issuance (`enrolledAt`; a re-enrollment moves it).
 */
export function onboardingsPerMinute(pledges: readonly PledgeRecord[], now: Date, minutes = 30): Array<{ start: Date; count: number }> {
  const end = Math.floor(now.getTime() / 60_000) * 60_000 + 60_000;
  const start = end - minutes * 60_000;
  const buckets = Array.from({ length: minutes }, (_, i) => ({ start: new Date(start + i * 60_000), count: 0 }));
  for (const p of pledges) {
    if (!p.enrolledAt) continue;
    const t = Date.parse(p.enrolledAt);
    if (t >= start && t < end) buckets[Math.floor((t - start) / 60_000)]!.count++;
  }
  return buckets;
}

/** Failure reason without the pledge's own serial, so that equal causes group together. */
export function failureReason(p: PledgeRecord): string {
  const text = p.lastError ?? (p.enrollStatus?.status === false ? `enroll status: ${p.enrollStatus.reason ?? 'failure'}`
    : p.voucherStatus?.status === false ? `voucher status: ${p.voucherStatus.reason ?? 'failure'}` : 'unknown');
  return text.split(p.serial).join('<serial>').slice(0, 200);
}

/** Failed pledges of the last `windowMs`, grouped by reason, most frequent first. */
export function recentFailures(pledges: readonly PledgeRecord[], now: Date, windowMs = 3600_000): Array<{ reason: string; count: number; latest: string; example: string }> {
  const groups = new Map<string, { reason: string; count: number; latest: string; example: string }>();
  for (const p of pledges) {
    if (p.state !== 'failed' || now.getTime() - Date.parse(p.updatedAt) > windowMs) continue;
    const reason = failureReason(p);
    const g = groups.get(reason) ?? { reason, count: 0, latest: p.updatedAt, example: p.serial };
    g.count++;
    if (p.updatedAt > g.latest) { g.latest = p.updatedAt; g.example = p.serial; }
    groups.set(reason, g);
  }
  return [...groups.values()].sort((a, b) => b.count - a.count || b.latest.localeCompare(a.latest));
}

export interface DeviceFilter { state?: PledgeState; serial?: string; manufacturer?: string }

export function filterDevices(pledges: readonly PledgeRecord[], f: DeviceFilter): PledgeRecord[] {
  const needle = f.serial?.trim().toLowerCase();
  return pledges.filter((p) => (!f.state || p.state === f.state)
    && (!needle || p.serial.toLowerCase().includes(needle))
    && (!f.manufacturer || p.manufacturer === f.manufacturer));
}

export function manufacturersOf(pledges: readonly PledgeRecord[]): string[] {
  return [...new Set(pledges.map((p) => p.manufacturer).filter((m): m is string => !!m))].sort();
}

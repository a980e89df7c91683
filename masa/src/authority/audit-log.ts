/**
 * The RFC 8995 §5.8 audit-log response (digest §7.3) built from a device's hash-chained log,
 * with the abridging rules: when there are more events than the configured maximum, keep per
 * domainID the newest nonced and the newest nonceless event and count the dropped ones in that
 * event's `truncated` and in the `truncation` totals; if still too long, drop the oldest events
 * and count them as `arbitrary`. Counters saturate at 1024 (RFC 8995 §5.8.2).
 */
import type { Assertion } from '@brski/shared/voucher/model';
import type { AuditEntry } from '../store/types.ts';

export const COUNTER_CAP = 1024;

export interface AuditLogEvent {
  date: string;
  domainID: string;
  nonce: string | null;
  assertion: Assertion;
  truncated?: number;
}

export interface AuditLogResponse {
  version: 1;
  events: AuditLogEvent[];
  truncation?: { 'nonced duplicates'?: number; 'nonceless duplicates'?: number; arbitrary?: number };
}

const cap = (n: number): number => Math.min(n, COUNTER_CAP);

export function buildAuditLog(entries: readonly AuditEntry[], maxEvents: number): AuditLogResponse {
  const all: AuditLogEvent[] = entries.map((e) => ({ date: e.date, domainID: e.domainId, nonce: e.nonce, assertion: e.assertion }));
  if (all.length <= maxEvents) return { version: 1, events: all };

  // Newest first per (domainID, nonced?) bucket: keep the first seen, count the rest.
  const kept = new Map<string, { event: AuditLogEvent; dropped: number; index: number }>();
  let noncedDup = 0; let noncelessDup = 0;
  for (let i = all.length - 1; i >= 0; i--) {
    const ev = all[i]!;
    const bucket = `${ev.nonce === null ? 'nl' : 'n'}|${ev.domainID}`;
    const k = kept.get(bucket);
    if (!k) { kept.set(bucket, { event: ev, dropped: 0, index: i }); continue; }
    k.dropped++;
    if (ev.nonce === null) noncelessDup++; else noncedDup++;
  }
  let events = [...kept.values()].sort((a, b) => a.index - b.index)
    .map(({ event, dropped }) => (dropped > 0 ? { ...event, truncated: cap(dropped) } : event));
  let arbitrary = 0;
  if (events.length > maxEvents) {
    arbitrary = events.length - maxEvents;
    events = events.slice(arbitrary); // oldest go first
  }
  const truncation: NonNullable<AuditLogResponse['truncation']> = {};
  if (noncedDup) truncation['nonced duplicates'] = cap(noncedDup);
  if (noncelessDup) truncation['nonceless duplicates'] = cap(noncelessDup);
  if (arbitrary) truncation.arbitrary = cap(arbitrary);
  return { version: 1, events, truncation };
}

/**
 * Hash chain over a device's audit log: entry.hash = SHA-256(prevHash ‖ canonical entry), so
 * editing, dropping or reordering any acknowledged entry breaks every hash after it.
 * Hashing happens in Node (Redis' Lua only offers SHA-1); the store appends with a
 * compare-and-set on the chain head so two concurrent appends cannot fork the chain.
 */
import { createHash } from 'node:crypto';
import type { AuditEntry, AuditEntryDraft } from './types.ts';

export const GENESIS_HASH = '0'.repeat(64);

/** Fields covered by the hash, in a fixed order (never JSON.stringify of an arbitrary object). */
const HASHED_FIELDS = ['seq', 'date', 'domainId', 'nonce', 'assertion', 'format', 'registrarCert', 'registrarSubject',
  'voucherHash', 'prevHash'] as const;

export function entryHash(entry: Omit<AuditEntry, 'hash'>): string {
  const canonical = JSON.stringify(HASHED_FIELDS.map((f) => entry[f]));
  return createHash('sha256').update(canonical).digest('hex');
}

export function sealEntry(draft: AuditEntryDraft, seq: number, prevHash: string): AuditEntry {
  const unsealed = { ...draft, seq, prevHash };
  return { ...unsealed, hash: entryHash(unsealed) };
}

export interface ChainCheck { ok: boolean; /** 1-based seq of the first bad entry. */ brokenAt?: number; reason?: string }

export function verifyAuditChain(entries: readonly AuditEntry[]): ChainCheck {
  let prev = GENESIS_HASH;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.seq !== i + 1) return { ok: false, brokenAt: i + 1, reason: `sequence ${e.seq} at position ${i + 1}` };
    if (e.prevHash !== prev) return { ok: false, brokenAt: e.seq, reason: 'prevHash does not match the previous entry' };
    const { hash, ...rest } = e;
    if (entryHash(rest) !== hash) return { ok: false, brokenAt: e.seq, reason: 'entry content does not match its hash' };
    prev = hash;
  }
  return { ok: true };
}

/**
 * Hash chain over a device's audit log, using the shared chain primitive
 * (hash = SHA-256(prevHash ‖ JCS(entry))): editing, dropping or reordering any acknowledged entry
 * breaks every hash after it. Hashing happens in Node (Redis' Lua only offers SHA-1); the store
 * appends with a compare-and-set on the chain head so two concurrent appends cannot fork it.
 */
import { chainHash, GENESIS_HASH } from '@brski/shared/store/hashchain';
import type { AuditEntry, AuditEntryDraft } from './types.ts';

export { GENESIS_HASH };

/** The hash covers every field except `hash` itself; `prevHash` is the chain input. */
export function entryHash(entry: Omit<AuditEntry, 'hash'>): string {
  const { prevHash, ...content } = entry;
  return chainHash(prevHash, content);
}

export function sealEntry(draft: AuditEntryDraft, seq: number, prevHash: string): AuditEntry {
  const unsealed = { ...draft, seq, prevHash };
  return { ...unsealed, hash: entryHash(unsealed) };
}

export interface ChainCheck { ok: boolean; /** seq of the first bad entry. */ brokenAt?: number; reason?: string }

export function verifyAuditChain(entries: readonly AuditEntry[]): ChainCheck {
  let prev = GENESIS_HASH;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (e.seq !== i + 1) return { ok: false, brokenAt: i + 1, reason: `sequence ${e.seq} at position ${i + 1}` };
    if (e.prevHash !== prev) return { ok: false, brokenAt: e.seq, reason: 'prevHash does not match the previous entry' };
    const { hash, ...rest } = e;
    let expected: string;
    try { expected = entryHash(rest); } catch (err) { return { ok: false, brokenAt: e.seq, reason: (err as Error).message }; }
    if (expected !== hash) return { ok: false, brokenAt: e.seq, reason: 'entry content does not match its hash' };
    prev = hash;
  }
  return { ok: true };
}

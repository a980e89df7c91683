/**
 * One contract for every MasaStore implementation. store.test.ts runs it against the memory store
 * and against a real Redis; a behaviour difference between the two is a bug in one of them.
 */
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, verifyAuditChain } from '../src/store/audit-chain.ts';
import type { AuditEntryDraft, DeviceRecord, MasaStore, VoucherCommit } from '../src/store/types.ts';

let counter = 0;
/** Serials unique per test so one store instance can be shared by the whole suite. */
export function uniqueSerial(prefix = 'SN'): string { return `${prefix}-${process.pid}-${Date.now()}-${++counter}`; }

export function device(serial: string, over: Partial<DeviceRecord> = {}): DeviceRecord {
  return {
    serial, idevidIssuer: 'BBgwFoAU', keyFingerprint: 'aa'.repeat(32), station: 'st-1', issuedAt: '2025-01-01T00:00:00.000Z',
    location: 'line 1', productLine: 'widget', revoked: false, certificate: 'MIIB', certificateSerial: '01', ...over,
  };
}

function draft(over: Partial<AuditEntryDraft> = {}): AuditEntryDraft {
  return {
    date: new Date().toISOString(), domainId: 'ZG9tYWlu', nonce: 'bm9uY2U=', assertion: 'logged', format: 'jws',
    registrarCert: 'ff'.repeat(32), registrarSubject: 'CN=registrar', voucherHash: '00'.repeat(32), ...over,
  };
}

function commit(serial: string, over: Partial<VoucherCommit> = {}): VoucherCommit {
  return { serial, nonceKey: `n${++counter}`, nonceTtlSeconds: 60, audit: draft(), ...over };
}

export function storeContract(name: string, make: () => MasaStore): void {
  describe(`MasaStore contract: ${name}`, () => {
    it('registers a device once; same key → exists, other key → clone, nothing overwritten', async () => {
      const s = make(); const sn = uniqueSerial();
      expect(await s.getDevice(sn)).toBeUndefined();
      const r1 = await s.registerDevice(device(sn));
      expect(r1.status).toBe('created');
      expect(await s.getDevice(sn)).toEqual(device(sn));
      expect((await s.registerDevice(device(sn, { station: 'st-2' }))).status).toBe('exists');
      const clone = await s.registerDevice(device(sn, { keyFingerprint: 'bb'.repeat(32), station: 'evil' }));
      expect(clone.status).toBe('clone');
      expect(clone.device.keyFingerprint).toBe('aa'.repeat(32));
      expect((await s.getDevice(sn))?.station).toBe('st-1');
    });

    it('revokes and un-revokes; policy override set and cleared; unknown device → false', async () => {
      const s = make(); const sn = uniqueSerial();
      expect(await s.setRevoked(sn, true, 'x')).toBe(false);
      expect(await s.setDevicePolicy(sn, 'open')).toBe(false);
      await s.registerDevice(device(sn));
      expect(await s.setRevoked(sn, true, 'stolen', new Date('2025-02-02T00:00:00Z'))).toBe(true);
      expect(await s.getDevice(sn)).toMatchObject({ revoked: true, revocationReason: 'stolen', revokedAt: '2025-02-02T00:00:00.000Z' });
      await s.setRevoked(sn, false);
      const d = await s.getDevice(sn);
      expect(d?.revoked).toBe(false);
      expect(d?.revocationReason).toBeUndefined();
      expect(await s.setDevicePolicy(sn, 'claimed')).toBe(true);
      expect((await s.getDevice(sn))?.policy).toBe('claimed');
      await s.setDevicePolicy(sn, null);
      expect((await s.getDevice(sn))?.policy).toBeUndefined();
    });

    it('claims, unclaims and product line policies', async () => {
      const s = make(); const sn = uniqueSerial(); const line = uniqueSerial('line');
      expect(await s.getOwnership(sn)).toEqual({ claimed: [] });
      await s.claim(sn, 'b'); await s.claim(sn, 'a'); await s.claim(sn, 'a');
      expect(await s.getOwnership(sn)).toEqual({ claimed: ['a', 'b'] });
      expect(await s.unclaim(sn, 'a')).toBe(true);
      expect(await s.unclaim(sn, 'a')).toBe(false);
      expect(await s.getProductLinePolicy(line)).toBeUndefined();
      await s.setProductLinePolicy(line, 'first-use');
      expect(await s.getProductLinePolicy(line)).toBe('first-use');
      await s.setProductLinePolicy(line, null);
      expect(await s.getProductLinePolicy(line)).toBeUndefined();
    });

    it('claimNonce is true exactly once per (serial, nonce), concurrently too', async () => {
      const s = make(); const sn = uniqueSerial();
      const results = await Promise.all(Array.from({ length: 10 }, () => s.claimNonce(sn, 'abcd', 60)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await s.claimNonce(sn, 'abce', 60)).toBe(true);
      expect(await s.claimNonce(uniqueSerial(), 'abcd', 60)).toBe(true);
    });

    it('commitVoucher appends a hash-chained entry and consumes the nonce', async () => {
      const s = make(); const sn = uniqueSerial();
      await s.registerDevice(device(sn));
      const ctx0 = await s.issuanceContext(sn);
      expect(ctx0).toMatchObject({ auditHead: GENESIS_HASH, auditLength: 0 });
      const r1 = await s.commitVoucher(commit(sn, { nonceKey: 'n1', expectedHead: ctx0.auditHead }));
      expect(r1.ok).toBe(true);
      const r2 = await s.commitVoucher(commit(sn, { nonceKey: undefined, audit: draft({ nonce: null }) }));
      expect(r2.ok).toBe(true);
      const log = await s.readAudit(sn);
      expect(log.map((e) => e.seq)).toEqual([1, 2]);
      expect(log[1]!.prevHash).toBe(log[0]!.hash);
      expect(log[1]!.nonce).toBeNull();
      expect(verifyAuditChain(log)).toEqual({ ok: true });
      expect((await s.issuanceContext(sn)).auditHead).toBe(log[1]!.hash);
      // the nonce is now in the ledger
      expect(await s.claimNonce(sn, 'n1', 60)).toBe(false);
    });

    it('commitVoucher with a stale head hint still appends correctly (CAS retry)', async () => {
      const s = make(); const sn = uniqueSerial();
      await s.registerDevice(device(sn));
      const stale = (await s.issuanceContext(sn)).auditHead;
      await s.commitVoucher(commit(sn));
      const r = await s.commitVoucher(commit(sn, { expectedHead: stale }));
      expect(r.ok).toBe(true);
      expect(verifyAuditChain(await s.readAudit(sn)).ok).toBe(true);
    });

    it('concurrent commits for one device keep a single unbroken chain', async () => {
      const s = make(); const sn = uniqueSerial();
      await s.registerDevice(device(sn));
      const head = (await s.issuanceContext(sn)).auditHead;
      const rs = await Promise.all(Array.from({ length: 6 }, () => s.commitVoucher(commit(sn, { expectedHead: head }))));
      expect(rs.every((r) => r.ok)).toBe(true);
      const log = await s.readAudit(sn);
      expect(log).toHaveLength(6);
      expect(verifyAuditChain(log).ok).toBe(true);
    });

    it('refusals write nothing: unknown, revoked, replayed nonce, other first-use owner, missing claim', async () => {
      const s = make(); const sn = uniqueSerial();
      expect(await s.commitVoucher(commit(sn))).toEqual({ ok: false, reason: 'unknown-device' });
      await s.registerDevice(device(sn));
      expect((await s.commitVoucher(commit(sn, { nonceKey: 'dup' }))).ok).toBe(true);
      expect(await s.commitVoucher(commit(sn, { nonceKey: 'dup' }))).toEqual({ ok: false, reason: 'replayed-nonce' });
      expect(await s.commitVoucher(commit(sn, { requireClaimedDomainId: 'nobody' }))).toEqual({ ok: false, reason: 'not-claimed' });

      // first-use: domain A wins; B refused; A again fine
      expect((await s.commitVoucher(commit(sn, { firstUseDomainId: 'A' }))).ok).toBe(true);
      expect(await s.commitVoucher(commit(sn, { firstUseDomainId: 'B', nonceKey: 'fresh-b' })))
        .toEqual({ ok: false, reason: 'claimed-by-other-domain' });
      expect(await s.claimNonce(sn, 'fresh-b', 60)).toBe(true); // the refused commit did not consume it
      expect((await s.getOwnership(sn)).firstUse).toBe('A');

      await s.setRevoked(sn, true, 'test');
      expect(await s.commitVoucher(commit(sn, { nonceKey: 'fresh-r' }))).toEqual({ ok: false, reason: 'device-revoked' });
      expect(await s.claimNonce(sn, 'fresh-r', 60)).toBe(true);
      expect(await s.readAudit(sn)).toHaveLength(2);
      expect(verifyAuditChain(await s.readAudit(sn)).ok).toBe(true);
    });

    it('first-use respects sales-record claims by another domain', async () => {
      const s = make(); const sn = uniqueSerial();
      await s.registerDevice(device(sn));
      await s.claim(sn, 'A');
      expect(await s.commitVoucher(commit(sn, { firstUseDomainId: 'B' }))).toEqual({ ok: false, reason: 'claimed-by-other-domain' });
      expect((await s.commitVoucher(commit(sn, { firstUseDomainId: 'A' }))).ok).toBe(true);
    });

    it('rate limiter counts per station and window', async () => {
      const s = make(); const st = uniqueSerial('station'); const now = 1_700_000_000_000;
      const rs = [];
      for (let i = 0; i < 4; i++) rs.push(await s.consumeRate(st, 3, 60, now));
      expect(rs.map((r) => r.allowed)).toEqual([true, true, true, false]);
      expect(rs[3]).toMatchObject({ count: 4, limit: 3 });
      expect((await s.consumeRate(uniqueSerial('station'), 3, 60, now)).allowed).toBe(true);
      expect((await s.consumeRate(st, 3, 60, now + 60_000)).count).toBe(1);
    });

    it('issuance report filters by station and period', async () => {
      const s = make(); const st = uniqueSerial('station'); const other = uniqueSerial('station');
      const rec = (serial: string, station: string, issuedAt: string) => ({
        serial, station, issuedAt, keyFingerprint: 'cc', location: 'L', productLine: 'p', certificateSerial: '02' });
      await s.recordIssuance(rec('s1', st, '2025-01-10T00:00:00.000Z'));
      await s.recordIssuance(rec('s2', st, '2025-04-10T00:00:00.000Z'));
      await s.recordIssuance(rec('s3', other, '2025-01-11T00:00:00.000Z'));
      const q1 = await s.issuanceReport(st, new Date('2025-01-01T00:00:00Z'), new Date('2025-04-01T00:00:00Z'));
      expect(q1.map((r) => r.serial)).toEqual(['s1']);
      const all = await s.issuanceReport(undefined, new Date('2025-01-01T00:00:00Z'), new Date('2025-04-01T00:00:00Z'));
      expect(all.map((r) => r.serial)).toEqual(expect.arrayContaining(['s1', 's3']));
      expect(all.map((r) => r.serial)).not.toContain('s2');
    });

    it('serials with hash-tag characters stay separate', async () => {
      const s = make(); const a = `${uniqueSerial()}{x}`; const b = `${uniqueSerial()}:x`;
      await s.registerDevice(device(a)); await s.registerDevice(device(b, { keyFingerprint: 'dd'.repeat(32) }));
      expect((await s.getDevice(a))?.keyFingerprint).toBe('aa'.repeat(32));
      expect((await s.getDevice(b))?.keyFingerprint).toBe('dd'.repeat(32));
    });
  });
}

describe('audit chain tamper detection', () => {
  it('detects an edited, dropped or reordered entry', async () => {
    const { MemoryMasaStore } = await import('../src/store/memory.ts');
    const s = new MemoryMasaStore(); const sn = uniqueSerial();
    await s.registerDevice(device(sn));
    for (let i = 0; i < 3; i++) await s.commitVoucher(commit(sn));
    const log = await s.readAudit(sn);
    expect(verifyAuditChain(log).ok).toBe(true);
    expect(verifyAuditChain(log.map((e, i) => (i === 1 ? { ...e, domainId: 'ZXZpbA==' } : e)))).toMatchObject({ ok: false, brokenAt: 2 });
    expect(verifyAuditChain([log[0]!, log[2]!]).ok).toBe(false);
    expect(verifyAuditChain([log[1]!, log[0]!, log[2]!]).ok).toBe(false);
  });
});

/**
 * One contract, two stores: the memory store and the Redis store (real Redis via startRedis()).
 * The Redis-only block runs two clients — two registrar processes — against one Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { MemoryRegistrarStore } from '../src/store/memory.ts';
import { RedisRegistrarStore } from '../src/store/redis.ts';
import { StoreConflictError, type CertificateRecord, type RegistrarStore } from '../src/store/types.ts';
import { startRedis } from '../../test/helpers/redis.ts';

let redis: Awaited<ReturnType<typeof startRedis>>;
let domainCounter = 0;
const stores: RegistrarStore[] = [];

beforeAll(async () => { redis = await startRedis(); });
afterAll(async () => {
  for (const s of stores) await s.close();
  await redis?.stop();
});

const factories: Array<[string, () => RegistrarStore]> = [
  ['memory', () => new MemoryRegistrarStore()],
  // A fresh domain per test keeps tests independent inside one Redis.
  ['redis', () => {
    const s = new RedisRegistrarStore(new Redis(redis.url), { domain: `d${++domainCounter}-${process.pid}` });
    stores.push(s);
    return s;
  }],
];

const cert = (serialNumber: string, pledgeSerial: string, extra: Partial<CertificateRecord> = {}): CertificateRecord => ({
  serialNumber, der: Uint8Array.of(0x30, 1, 2, 3), pledgeSerial, issuedAt: '2026-01-01T00:00:00.000Z', notAfter: '2027-01-01T00:00:00.000Z', ...extra,
});

describe.each(factories)('RegistrarStore contract (%s)', (_name, make) => {
  it('creates a pledge on first update, merges patches, deletes null fields and keeps the timeline', async () => {
    const s = make();
    const p1 = await s.updatePledge('SN-1', { manufacturer: 'acme', lastError: 'x' }, { type: 'requested', at: '2026-01-01T00:00:00.000Z' });
    expect(p1).toMatchObject({ serial: 'SN-1', state: 'requested', createdAt: '2026-01-01T00:00:00.000Z', manufacturer: 'acme' });
    const p2 = await s.updatePledge('SN-1', { state: 'voucher-issued', lastError: null, voucherStatus: { at: 'now', version: 1, status: true, authenticated: true } },
      { type: 'voucher', detail: { format: 'cms' }, at: '2026-01-01T00:01:00.000Z' });
    expect(p2.state).toBe('voucher-issued');
    expect(p2.createdAt).toBe('2026-01-01T00:00:00.000Z');
    expect(p2.updatedAt).toBe('2026-01-01T00:01:00.000Z');
    expect(p2.lastError).toBeUndefined();
    expect(p2.voucherStatus?.status).toBe(true);
    expect(await s.getPledge('SN-1')).toEqual(p2);
    expect((await s.pledgeEvents('SN-1')).map((e) => e.type)).toEqual(['requested', 'voucher']);
    expect(await s.getPledge('nope')).toBeUndefined();
  });

  it('lists pledges newest first and filters by state', async () => {
    const s = make();
    await s.updatePledge('A', {}, { type: 't', at: '2026-01-01T00:00:00.000Z' });
    await s.updatePledge('B', { state: 'enrolled' }, { type: 't', at: '2026-01-02T00:00:00.000Z' });
    await s.updatePledge('C', {}, { type: 't', at: '2026-01-03T00:00:00.000Z' });
    expect((await s.listPledges()).map((p) => p.serial)).toEqual(['C', 'B', 'A']);
    expect((await s.listPledges({ state: 'requested' })).map((p) => p.serial)).toEqual(['C', 'A']);
    expect((await s.listPledges({ offset: 1, limit: 1 })).map((p) => p.serial)).toEqual(['B']);
  });

  it('keeps serials with key-breaking characters apart', async () => {
    const s = make();
    await s.updatePledge('x:pledge:y', { manufacturer: 'm1' }, { type: 't' });
    await s.updatePledge('x', { manufacturer: 'm2' }, { type: 't' });
    expect((await s.getPledge('x:pledge:y'))?.manufacturer).toBe('m1');
  });

  it('queues approvals once and records decisions', async () => {
    const s = make();
    const a = await s.requestApproval('P1', 'acme', '2026-01-01T00:00:00.000Z');
    expect(a.decision).toBe('pending');
    const again = await s.requestApproval('P1', 'acme', '2026-02-01T00:00:00.000Z');
    expect(again.requestedAt).toBe('2026-01-01T00:00:00.000Z');
    expect(await s.decideApproval('unknown', 'approved', 'op', 'now')).toBeUndefined();
    const d = await s.decideApproval('P1', 'denied', 'op', '2026-01-02T00:00:00.000Z');
    expect(d).toMatchObject({ decision: 'denied', decidedBy: 'op' });
    expect(await s.listApprovals('pending')).toEqual([]);
    expect((await s.listApprovals('denied')).map((x) => x.serial)).toEqual(['P1']);
  });

  it('edits the allowlist', async () => {
    const s = make();
    expect(await s.addAllowlist('ACME-*')).toBe(true);
    expect(await s.addAllowlist('ACME-*')).toBe(false);
    await s.addAllowlist('SN-9');
    expect(await s.listAllowlist()).toEqual(['ACME-*', 'SN-9']);
    expect(await s.removeAllowlist('SN-9')).toBe(true);
    expect(await s.removeAllowlist('SN-9')).toBe(false);
    expect(await s.listAllowlist()).toEqual(['ACME-*']);
  });

  it('creates a voucher job once, then updates it, bytes intact', async () => {
    const s = make();
    const job = { pvrDigest: 'ab', serial: 'S', status: 'pending' as const, updatedAt: 'now', attempts: 0 };
    expect(await s.createVoucherJob(job, 60)).toBe(true);
    expect(await s.createVoucherJob(job, 60)).toBe(false);
    await s.putVoucherJob({ ...job, status: 'issued', voucher: Uint8Array.of(1, 2, 255) }, 60);
    const got = await s.getVoucherJob('ab');
    expect(got?.status).toBe('issued');
    expect(got?.voucher).toEqual(Uint8Array.of(1, 2, 255));
  });

  it('stores vouchers with their RVR', async () => {
    const s = make();
    await s.saveVoucher({ serial: 'S', format: 'cose', voucher: Uint8Array.of(9), rvr: Uint8Array.of(8), masaUrl: 'https://m', issuedAt: 'now', nonce: '0102' });
    expect(await s.getVoucher('S')).toEqual({ serial: 'S', format: 'cose', voucher: Uint8Array.of(9), rvr: Uint8Array.of(8), masaUrl: 'https://m', issuedAt: 'now', nonce: '0102' });
  });

  it('allocates increasing certificate serials', async () => {
    const s = make();
    const a = await s.nextCertificateSerial();
    const b = await s.nextCertificateSerial();
    expect(b > a).toBe(true);
  });

  it('records issuance, links supersession and refuses a second supersession or a duplicate serial', async () => {
    const s = make();
    await s.recordCertificate(cert('01', 'P'));
    await expect(s.recordCertificate(cert('01', 'P'))).rejects.toBeInstanceOf(StoreConflictError);
    await s.recordCertificate(cert('02', 'P', { supersedes: '01' }));
    expect((await s.getCertificate('01'))?.supersededBy).toBe('02');
    await expect(s.recordCertificate(cert('03', 'P', { supersedes: '01' }))).rejects.toBeInstanceOf(StoreConflictError);
    expect(await s.getCertificate('03')).toBeUndefined();
    await expect(s.recordCertificate(cert('04', 'P', { supersedes: 'ff' }))).rejects.toBeInstanceOf(StoreConflictError);
    expect((await s.listCertificates('P')).map((c) => c.serialNumber)).toEqual(['01', '02']);
    expect((await s.getCertificate('02'))?.der).toEqual(Uint8Array.of(0x30, 1, 2, 3));
  });

  it('revokes once, bumps the revocation version and refuses superseding a revoked certificate', async () => {
    const s = make();
    await s.recordCertificate(cert('0a', 'P'));
    const v0 = await s.revocationVersion();
    expect(await s.revokeCertificate('0a', 'keyCompromise', '2026-01-01T00:00:00.000Z')).toBe(true);
    expect(await s.revokeCertificate('0a', 'keyCompromise', '2026-01-01T00:00:00.000Z')).toBe(false);
    expect(await s.revokeCertificate('ee', 'unspecified', 'now')).toBe(false);
    expect(await s.revocationVersion()).toBe(v0 + 1);
    expect(await s.listRevocations()).toEqual([{ serialNumber: '0a', revokedAt: '2026-01-01T00:00:00.000Z', reason: 'keyCompromise' }]);
    expect((await s.getCertificate('0a'))?.revokedAt).toBe('2026-01-01T00:00:00.000Z');
    await expect(s.recordCertificate(cert('0b', 'P', { supersedes: '0a' }))).rejects.toBeInstanceOf(StoreConflictError);
  });

  it('keeps the CRL of the newest revocation version', async () => {
    const s = make();
    expect(await s.getCrl()).toBeUndefined();
    const n1 = await s.nextCrlNumber();
    expect(await s.nextCrlNumber()).toBe(n1 + 1n);
    await s.saveCrl({ der: Uint8Array.of(1), crlNumber: '2', version: 2, nextUpdate: 'x' });
    await s.saveCrl({ der: Uint8Array.of(2), crlNumber: '3', version: 1, nextUpdate: 'y' });
    expect(await s.getCrl()).toEqual({ der: Uint8Array.of(1), crlNumber: '2', version: 2, nextUpdate: 'x' });
  });
});

describe('two registrar processes sharing one Redis', () => {
  it('never allocate the same certificate serial', async () => {
    const domain = `shared-${process.pid}`;
    const a = new RedisRegistrarStore(new Redis(redis.url), { domain });
    const b = new RedisRegistrarStore(new Redis(redis.url), { domain });
    stores.push(a, b);
    const all = await Promise.all(Array.from({ length: 400 }, (_, i) => (i % 2 ? a : b).nextCertificateSerial()));
    expect(new Set(all).size).toBe(400);
  });

  it('lose no pledge event or field under concurrent updates', async () => {
    const domain = `shared2-${process.pid}`;
    const a = new RedisRegistrarStore(new Redis(redis.url), { domain });
    const b = new RedisRegistrarStore(new Redis(redis.url), { domain });
    stores.push(a, b);
    await Promise.all(Array.from({ length: 100 }, (_, i) =>
      (i % 2 ? a : b).updatePledge('P', i === 50 ? { manufacturer: 'acme' } : i === 51 ? { masaUrl: 'https://m' } : {}, { type: `e${i}` })));
    expect(await a.pledgeEvents('P')).toHaveLength(100);
    expect(await b.getPledge('P')).toMatchObject({ manufacturer: 'acme', masaUrl: 'https://m' });
  });

  it('let exactly one of two racing re-enrollments supersede a certificate', async () => {
    const domain = `shared3-${process.pid}`;
    const a = new RedisRegistrarStore(new Redis(redis.url), { domain });
    const b = new RedisRegistrarStore(new Redis(redis.url), { domain });
    stores.push(a, b);
    await a.recordCertificate(cert('10', 'P'));
    const results = await Promise.allSettled([
      a.recordCertificate(cert('11', 'P', { supersedes: '10' })),
      b.recordCertificate(cert('12', 'P', { supersedes: '10' })),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect((await a.listCertificates('P'))).toHaveLength(2);
  });
});

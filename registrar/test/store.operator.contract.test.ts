/**
 * Contract for the operator-facing store additions (certificate listing, admission mode and its
 * change trail), on the memory store and on a real Redis — including two clients on one Redis,
 * i.e. two registrar processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { MemoryRegistrarStore } from '../src/store/memory.ts';
import { RedisRegistrarStore } from '../src/store/redis.ts';
import { MAX_POLICY_CHANGES, StoreConflictError, type CertificateRecord, type PolicyChangeRecord, type RegistrarStore } from '../src/store/types.ts';
import { startRedis } from '../../test/helpers/redis.ts';

let redis: Awaited<ReturnType<typeof startRedis>>;
let domainCounter = 0;
const stores: RegistrarStore[] = [];

beforeAll(async () => { redis = await startRedis(); });
afterAll(async () => {
  for (const s of stores) await s.close();
  await redis?.stop();
});

const redisStore = (domain: string) => {
  const s = new RedisRegistrarStore(new Redis(redis.url), { domain });
  stores.push(s);
  return s;
};
const factories: Array<[string, () => RegistrarStore]> = [
  ['memory', () => new MemoryRegistrarStore()],
  ['redis', () => redisStore(`op${++domainCounter}-${process.pid}`)],
];

const cert = (serialNumber: string, pledgeSerial: string, minute: number, extra: Partial<CertificateRecord> = {}): CertificateRecord => ({
  serialNumber, der: Uint8Array.of(0x30, 1, 2, 3), pledgeSerial,
  issuedAt: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(), notAfter: '2027-01-01T00:00:00.000Z', ...extra,
});
const change = (to: PolicyChangeRecord['to'], at: string, extra: Partial<PolicyChangeRecord> = {}): PolicyChangeRecord =>
  ({ at, by: 'op', via: 'admin-api', from: 'accept', to, ...extra });

describe.each(factories)('operator store contract (%s)', (_name, make) => {
  it('lists issued certificates newest first, paged, across pledges, with current status', async () => {
    const s = make();
    expect(await s.listIssuedCertificates()).toEqual([]);
    expect(await s.countIssuedCertificates()).toBe(0);
    await s.recordCertificate(cert('0A', 'P1', 1));
    await s.recordCertificate(cert('0B', 'P2', 2));
    await s.recordCertificate(cert('0C', 'P1', 3, { supersedes: '0A' }));
    await s.recordCertificate(cert('0D', 'P3', 4));
    await s.revokeCertificate('0B', 'keyCompromise', '2026-01-01T01:00:00.000Z');

    expect(await s.countIssuedCertificates()).toBe(4);
    const all = await s.listIssuedCertificates();
    expect(all.map((c) => c.serialNumber)).toEqual(['0D', '0C', '0B', '0A']);
    // Records come back whole and current: supersession and revocation are visible.
    expect(all[3]).toMatchObject({ pledgeSerial: 'P1', supersededBy: '0C' });
    expect(all[2]).toMatchObject({ revokedAt: '2026-01-01T01:00:00.000Z', revocationReason: 'keyCompromise' });
    expect(all[0]!.der).toEqual(Uint8Array.of(0x30, 1, 2, 3));

    expect((await s.listIssuedCertificates({ limit: 2 })).map((c) => c.serialNumber)).toEqual(['0D', '0C']);
    expect((await s.listIssuedCertificates({ offset: 2, limit: 2 })).map((c) => c.serialNumber)).toEqual(['0B', '0A']);
    expect((await s.listIssuedCertificates({ offset: 3, limit: 5 })).map((c) => c.serialNumber)).toEqual(['0A']);
    expect(await s.listIssuedCertificates({ offset: 4, limit: 5 })).toEqual([]);
    expect(await s.listIssuedCertificates({ limit: 0 })).toEqual([]);
  });

  it('does not list a certificate whose recording was refused', async () => {
    const s = make();
    await s.recordCertificate(cert('01', 'P1', 1));
    await s.recordCertificate(cert('02', 'P1', 2, { supersedes: '01' }));
    await expect(s.recordCertificate(cert('03', 'P1', 3, { supersedes: '01' }))).rejects.toBeInstanceOf(StoreConflictError);
    await expect(s.recordCertificate(cert('02', 'P9', 4))).rejects.toBeInstanceOf(StoreConflictError);
    expect((await s.listIssuedCertificates()).map((c) => `${c.serialNumber}/${c.pledgeSerial}`)).toEqual(['02/P1', '01/P1']);
    expect(await s.countIssuedCertificates()).toBe(2);
  });

  it('stores, replaces and clears the operator admission mode with a change trail', async () => {
    const s = make();
    expect(await s.getAdmissionMode()).toBeUndefined();
    expect(await s.listPolicyChanges()).toEqual([]);
    await s.setAdmissionMode({ mode: 'approve', setAt: '2026-01-01T00:00:00.000Z', setBy: 'alice' }, change('approve', '2026-01-01T00:00:00.000Z'));
    expect(await s.getAdmissionMode()).toEqual({ mode: 'approve', setAt: '2026-01-01T00:00:00.000Z', setBy: 'alice' });
    await s.setAdmissionMode({ mode: 'allowlist', setAt: '2026-01-01T00:01:00.000Z', setBy: 'bob' }, change('allowlist', '2026-01-01T00:01:00.000Z', { from: 'approve' }));
    expect((await s.getAdmissionMode())?.mode).toBe('allowlist');
    await s.setAdmissionMode(null, change('accept', '2026-01-01T00:02:00.000Z', { from: 'allowlist', reset: true }));
    expect(await s.getAdmissionMode()).toBeUndefined();
    const trail = await s.listPolicyChanges();
    expect(trail.map((c) => `${c.from}->${c.to}`)).toEqual(['allowlist->accept', 'approve->allowlist', 'accept->approve']);
    expect(trail[0]!.reset).toBe(true);
    expect((await s.listPolicyChanges(1)).length).toBe(1);
  });

  it('keeps at most MAX_POLICY_CHANGES entries in the trail', async () => {
    const s = make();
    for (let i = 0; i < MAX_POLICY_CHANGES + 5; i++) {
      await s.setAdmissionMode({ mode: 'approve', setAt: String(i), setBy: 'op' }, change('approve', String(i)));
    }
    const trail = await s.listPolicyChanges(MAX_POLICY_CHANGES + 50);
    expect(trail.length).toBe(MAX_POLICY_CHANGES);
    expect(trail[0]!.at).toBe(String(MAX_POLICY_CHANGES + 4));
  });
});

describe('operator store on one Redis shared by two processes', () => {
  it('a mode set through one client is read through the other; certificates from both are listed', async () => {
    const domain = `shared-${process.pid}`;
    const a = redisStore(domain);
    const b = redisStore(domain);
    await a.setAdmissionMode({ mode: 'approve', setAt: '2026-01-01T00:00:00.000Z', setBy: 'alice' }, change('approve', '2026-01-01T00:00:00.000Z'));
    expect((await b.getAdmissionMode())?.mode).toBe('approve');
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).recordCertificate(cert(`C${i}`, `P${i}`, i))));
    expect(await a.countIssuedCertificates()).toBe(20);
    const listed = await b.listIssuedCertificates({ limit: 50 });
    expect(new Set(listed.map((c) => c.serialNumber)).size).toBe(20);
  });
});

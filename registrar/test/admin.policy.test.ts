/**
 * Admin API for the operator settings: the admission mode (token required; stored so every
 * process on the store applies it; a change takes effect on the next voucher request and is kept
 * in the change trail), approvals through the shared decidePledge, and the paged certificate list.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { makePvr, request, type HttpResult } from './helpers/client.ts';
import { startConsoleWorld, type ConsoleWorld } from './console/harness.ts';
import { AdmissionPolicy, MODE_CACHE_MS, type AdmissionConfig } from '../src/authority/admission.ts';
import { MemoryRegistrarStore } from '../src/store/memory.ts';
import { RedisRegistrarStore } from '../src/store/redis.ts';
import type { CertificateRecord } from '../src/store/types.ts';
import { startRedis } from '../../test/helpers/redis.ts';

let w: ConsoleWorld;
let admin = '';
let auth: Record<string, string>;

beforeAll(async () => {
  w = await startConsoleWorld({ devices: 4, overrides: (c) => { c.policy.approvalRetryAfter = 1; } });
  admin = `${w.consoleUrl}/admin`;
  auth = { authorization: `Bearer ${w.fx.adminToken}` };
}, 60_000);
afterAll(async () => { await w?.stop(); });

const json = (r: HttpResult) => JSON.parse(r.body.toString()) as Record<string, any>;
const put = (body: unknown, headers: Record<string, string> = auth) =>
  request(`${admin}/policy/mode`, { method: 'PUT', headers: { ...headers, 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });

async function requestVoucher(i: number): Promise<HttpResult> {
  const p = w.fx.pledges[i]!;
  const { bytes } = await makePvr('jws', p.signer, p.serial, { registrarCert: w.fx.registrarCert });
  return request(`${w.reg.url}/.well-known/brski/requestvoucher`, {
    method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE.jws, accept: VOUCHER_MEDIA_TYPE.jws }, body: bytes, key: p.keyPem, cert: p.certPem,
  });
}

describe('admin API: admission mode', () => {
  it('refuses reads and changes without the right bearer token, and changes nothing', async () => {
    const refused: Record<string, string>[] = [{}, { authorization: 'Bearer wrong-token-wrong-token' }, { authorization: `Basic ${w.fx.adminToken}` }];
    for (const headers of refused) {
      expect((await request(`${admin}/policy`, { headers })).status).toBe(401);
      expect((await put({ mode: 'approve' }, headers)).status).toBe(401);
      expect((await request(`${admin}/policy/mode`, { method: 'DELETE', headers })).status).toBe(401);
      expect((await request(`${admin}/certificates`, { headers })).status).toBe(401);
    }
    expect(await w.reg.store.getAdmissionMode()).toBeUndefined();
    expect(await w.reg.store.listPolicyChanges()).toEqual([]);
  });

  it('reports the configured mode until an operator sets one', async () => {
    const r = await request(`${admin}/policy`, { headers: auth });
    expect(r.status).toBe(200);
    expect(json(r)).toMatchObject({ mode: { mode: 'accept', source: 'config', configured: 'accept' }, allowlist: { config: [], operator: [] }, changes: [] });
  });

  it('refuses malformed mode changes', async () => {
    expect((await put({ mode: 'open' })).status).toBe(400);
    expect((await put({ mode: 'approve', extra: 1 })).status).toBe(400);
    expect((await put({})).status).toBe(400);
    expect((await put('mode=approve')).status).toBe(400);
    expect((await put({ mode: 'approve', by: 'x'.repeat(65) })).status).toBe(400);
    expect(await w.reg.store.getAdmissionMode()).toBeUndefined();
  });

  it('switches to approve: the next unknown pledge waits; approval through the API lets it pass', async () => {
    const r = await put({ mode: 'approve', by: 'alice' });
    expect(r.status).toBe(200);
    expect(json(r)).toMatchObject({ changed: true, before: { mode: 'accept', source: 'config' }, after: { mode: 'approve', source: 'operator', setBy: 'alice' } });
    expect((await w.reg.store.getAdmissionMode())?.mode).toBe('approve');

    const waiting = await requestVoucher(0);
    expect(waiting.status).toBe(202);
    expect(waiting.headers['retry-after']).toBe('1');
    expect((await w.reg.store.getApproval(w.fx.pledges[0]!.serial))?.decision).toBe('pending');

    const ok = await request(`${admin}/pledges/${w.fx.pledges[0]!.serial}/approve`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{"by":"bob"}' });
    expect(ok.status).toBe(200);
    expect(json(ok).approval).toMatchObject({ decision: 'approved', decidedBy: 'bob' });
    expect((await w.reg.store.pledgeEvents(w.fx.pledges[0]!.serial)).map((e) => e.type)).toContain('approved');
    expect((await requestVoucher(0)).status).toBe(200);
  });

  it('the same mode again changes nothing and adds no trail entry', async () => {
    const r = await put({ mode: 'approve', by: 'alice' });
    expect(json(r).changed).toBe(false);
    expect((await w.reg.store.listPolicyChanges()).length).toBe(1);
  });

  it('switches to allowlist: a pledge not on the list is refused (404), one on it passes', async () => {
    expect(json(await put({ mode: 'allowlist' })).after.mode).toBe('allowlist');
    expect((await requestVoucher(1)).status).toBe(404);
    await request(`${admin}/allowlist`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ entry: w.fx.pledges[1]!.serial }) });
    expect((await requestVoucher(1)).status).toBe(200);
  });

  it('DELETE returns to the configured mode (accept): the next pledge onboards without approval', async () => {
    const r = await request(`${admin}/policy/mode`, { method: 'DELETE', headers: auth });
    expect(r.status).toBe(200);
    expect(json(r)).toMatchObject({ changed: true, after: { mode: 'accept', source: 'config' } });
    expect(await w.reg.store.getAdmissionMode()).toBeUndefined();
    expect((await requestVoucher(2)).status).toBe(200);
    expect(await w.reg.store.getApproval(w.fx.pledges[2]!.serial)).toBeUndefined();
    const policy = json(await request(`${admin}/policy`, { headers: auth }));
    expect(policy.changes.map((c: { from: string; to: string }) => `${c.from}->${c.to}`)).toEqual(['allowlist->accept', 'approve->allowlist', 'accept->approve']);
    expect(policy.changes[0]).toMatchObject({ reset: true, via: 'admin-api', by: 'admin' });
  });

  it('refuses approving a malformed serial and records nothing', async () => {
    const r = await request(`${admin}/pledges/bad%20serial/approve`, { method: 'POST', headers: auth });
    expect(r.status).toBe(400);
    expect(await w.reg.store.getApproval('bad serial')).toBeUndefined();
  });
});

describe('admin API: issued certificates', () => {
  it('lists certificates newest first, paged, without DER, with their status', async () => {
    const s = w.reg.store;
    const before = await s.countIssuedCertificates();
    const mk = (n: number, extra: Partial<CertificateRecord> = {}): CertificateRecord => ({
      serialNumber: `FF${n.toString(16).padStart(4, '0').toUpperCase()}`, der: Uint8Array.of(0x30, 0), pledgeSerial: `ADMIN-TEST-${n}`,
      issuedAt: new Date(Date.UTC(2030, 0, 1, 0, n)).toISOString(), notAfter: '2031-01-01T00:00:00.000Z', ...extra,
    });
    for (let i = 0; i < 5; i++) await s.recordCertificate(mk(i));
    await s.revokeCertificate('FF0001', 'keyCompromise', '2030-01-02T00:00:00.000Z');
    const r = await request(`${admin}/certificates?limit=3`, { headers: auth });
    expect(r.status).toBe(200);
    const body = json(r);
    expect(body.total).toBe(before + 5);
    expect(body.certificates.map((c: { serialNumber: string }) => c.serialNumber)).toEqual(['FF0004', 'FF0003', 'FF0002']);
    expect(body.certificates[0].der).toBeUndefined();
    expect(body.certificates[0].status).toBe('current');
    const next = json(await request(`${admin}/certificates?limit=3&offset=3`, { headers: auth }));
    expect(next.certificates.slice(0, 2).map((c: { serialNumber: string; status: string }) => `${c.serialNumber}/${c.status}`)).toEqual(['FF0001/revoked', 'FF0000/current']);
    for (const q of ['limit=-1', 'offset=abc', 'limit=1e3']) expect((await request(`${admin}/certificates?${q}`, { headers: auth })).status, q).toBe(400);
  });
});

describe('AdmissionPolicy mode sharing', () => {
  const cfg: AdmissionConfig = { mode: 'accept', allowlist: [], approvalRetryAfter: 5, refusalStatus: 403 };

  it('a change is applied at once by the same policy and within MODE_CACHE_MS by another on the store; it is logged', async () => {
    const store = new MemoryRegistrarStore();
    const a = new AdmissionPolicy(cfg, store);
    const b = new AdmissionPolicy(cfg, store);
    await a.admit('S0', 'm', new Date());
    await b.admit('S1', 'm', new Date()); // accept; also primes b's view
    const logged: unknown[] = [];
    const log = { warn: (o: unknown) => { logged.push(o); } } as unknown as import('pino').Logger;
    await a.setMode('approve', { by: 'op', via: 'test', at: new Date(), log });
    await expect(a.admit('S2', 'm', new Date())).rejects.toMatchObject({ code: 'pending' });
    expect(logged).toEqual([expect.objectContaining({ event: 'admission-mode-changed', from: 'accept', to: 'approve', by: 'op' })]);
    // b answers from its cached read for at most MODE_CACHE_MS, then applies the stored mode.
    await expect.poll(async () => b.admit('S2b', 'm', new Date()).then(() => 'admitted', (e: { code?: string }) => e.code),
      { timeout: MODE_CACHE_MS * 3 }).toBe('pending');
    expect((await b.currentMode(true)).mode).toBe('approve');
    await a.setMode('allowlist', { by: 'op', via: 'test', at: new Date() });
    await expect(a.admit('S3', 'm', new Date())).rejects.toMatchObject({ code: 'forbidden' });
    expect((await a.setMode(null, { by: 'op', via: 'test', at: new Date() })).after).toMatchObject({ mode: 'accept', source: 'config' });
    await expect(a.admit('S4', 'm', new Date())).resolves.toBeUndefined();
    // Nothing to reset: no write, no trail entry.
    expect((await a.setMode(null, { by: 'op', via: 'test', at: new Date() })).changed).toBe(false);
    expect((await store.listPolicyChanges()).length).toBe(3);
  });

  it('two registrar processes on one Redis: a mode set by one is applied by the other', async () => {
    const redis = await startRedis();
    const domain = `mode-${process.pid}`;
    const s1 = new RedisRegistrarStore(new Redis(redis.url), { domain });
    const s2 = new RedisRegistrarStore(new Redis(redis.url), { domain });
    try {
      const p1 = new AdmissionPolicy(cfg, s1);
      const p2 = new AdmissionPolicy(cfg, s2);
      await p2.admit('R1', 'm', new Date());
      await p1.setMode('approve', { by: 'op', via: 'test', at: new Date() });
      expect((await p2.currentMode(true)).mode).toBe('approve');
      // Within the bounded cache interval the other process applies it too.
      await expect.poll(async () => p2.admit('R2', 'm', new Date()).then(() => 'admitted', (e: { code?: string }) => e.code), { timeout: 5000 }).toBe('pending');
      expect((await s2.getApproval('R2'))?.decision).toBe('pending');
    } finally {
      await s1.close();
      await s2.close();
      await redis.stop();
    }
  });
});

/**
 * Audit-log policy end to end (digest §2.1 h, §7.3, §12 registrar 7) over real HTTPS against the
 * test MASA: voucher_status → background audit-log fetch with the stored RVR → verdict on the pledge
 * → EST gate. Enforce mode runs on the memory and the Redis store (the verdict is pledge state
 * shared by registrar processes); warn and off run on memory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { decodeBase64Body } from '@brski/shared/est/base64-body';
import { decodeCertsOnly } from '@brski/shared/est/certs-only';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { createCsr, generateKeyPair } from '@brski/shared/pki/index';
import { domainIdOf } from '@brski/shared/pki/identity';
import { encodeStatusTelemetry } from '@brski/shared/voucher/telemetry';
import { startRedis } from '../../test/helpers/redis.ts';
import { auditStateOf } from '../src/authority/audit-policy.ts';
import type { RegistrarConfig } from '../src/config.ts';
import { createRegistrar, type Registrar } from '../src/server.ts';
import { makeFixture, type Fixture, type TestPledge } from './helpers/fixture.ts';
import { makePvr, request } from './helpers/client.ts';
import { startTestMasa, type TestMasa } from './helpers/test-masa.ts';

interface Creds { keyPem: string; certPem: string }
interface LogLine { level: number; msg: string; alert?: boolean; serial?: string; violations?: unknown }

function capture(): { logger: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  return { lines, logger: pino({ level: 'info' }, { write: (s: string) => { lines.push(JSON.parse(s) as LogLine); } }) };
}

function world(reg: () => Registrar, fx: () => Fixture) {
  const admin = (path: string, method = 'GET', body?: unknown, token = fx().adminToken) => request(`${reg().adminUrl}${path}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return {
    admin,
    async onboard(p: TestPledge): Promise<void> {
      const { bytes } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx().registrarCert });
      const r = await request(`${reg().url}/.well-known/brski/requestvoucher`, {
        method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE.cms }, body: bytes, key: p.keyPem, cert: p.certPem,
      });
      expect(r.status, r.body.toString()).toBe(200);
    },
    async voucherStatus(c: Creds, serial: string, status = true): Promise<void> {
      const r = await request(`${reg().url}/.well-known/brski/voucher_status`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: encodeStatusTelemetry({ status }, 'json'), key: c.keyPem, cert: c.certPem,
      });
      expect(r.status).toBe(200);
      await reg().auditPolicy.settled(serial);
    },
    async est(c: Creds, op: 'simpleenroll' | 'simplereenroll', subject: Array<[string, string]> = [['CN', 'x']]) {
      const key = generateKeyPair('P-256').privateKey;
      const csr = await createCsr(subject, new SoftwareSigner(key));
      const r = await request(`${reg().url}/.well-known/est/${op}`, {
        method: 'POST', headers: { 'content-type': 'application/pkcs10' }, body: Buffer.from(csr).toString('base64'), key: c.keyPem, cert: c.certPem,
      });
      const cert = r.status === 200 ? decodeCertsOnly(decodeBase64Body(r.body))[0] : undefined;
      return { status: r.status, text: r.body.toString(), retryAfter: r.headers['retry-after'], cert,
        creds: cert ? { certPem: cert.toString(), keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string } : undefined };
    },
    async events(serial: string) { return (await reg().store.pledgeEvents(serial)).filter((e) => e.type.startsWith('audit-policy')); },
    async state(serial: string) { return auditStateOf(await reg().store.getPledge(serial)); },
  };
}

async function foreignEvent(fx: Fixture, nonce: string | null = 'bm9uY2U=') {
  return { date: new Date().toISOString(), domainID: Buffer.from(domainIdOf(await fx.foreignRegistrarCert())).toString('base64'), nonce, assertion: 'logged' };
}

const enforce = (c: RegistrarConfig) => { c.auditPolicy = { mode: 'enforce', allowDomainIds: [], requireNonce: true, attempts: 2, retryDelayMs: 20, retryAfter: 1 }; };

describe.each(['memory', 'redis'] as const)('audit-log policy, enforce (%s store)', (storeType) => {
  let fx: Fixture;
  let masa: TestMasa;
  let reg: Registrar;
  let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
  const log = capture();
  const w = world(() => reg, () => fx);

  beforeAll(async () => {
    if (storeType === 'redis') redis = await startRedis();
    fx = await makeFixture({ devices: 5, overrides: (c) => {
      enforce(c);
      if (redis) c.store = { type: 'redis', url: redis.url, prefix: 'brski:registrar:' };
    } });
    masa = await startTestMasa(fx);
    reg = createRegistrar(fx.config, { logger: log.logger });
    await reg.start();
  });
  afterAll(async () => {
    await reg?.stop();
    await masa?.stop();
    await redis?.stop();
  });

  it('a clean log passes: verdict recorded, simpleenroll allowed', async () => {
    const p = fx.pledges[0]!;
    await w.onboard(p);
    await w.voucherStatus(p, p.serial);
    const rec = await reg.store.getPledge(p.serial);
    expect(await w.state(p.serial)).toMatchObject({ status: 'passed', voucherIssuedAt: rec!.voucherIssuedAt, events: 1 });
    expect((await w.events(p.serial)).at(-1)).toMatchObject({ type: 'audit-policy', detail: { verdict: 'passed', violations: 0 } });
    const e = await w.est(p, 'simpleenroll');
    expect(e.status, e.text).toBe(200);
  });

  it('another domain in the log: 406 audit-policy-failed, alert logged, nothing issued until an operator clears it', async () => {
    const p = fx.pledges[1]!;
    await w.onboard(p);
    masa.extraAuditEvents = [await foreignEvent(fx)];
    try {
      await w.voucherStatus(p, p.serial);
    } finally { masa.extraAuditEvents = []; }
    const st = await w.state(p.serial);
    expect(st).toMatchObject({ status: 'failed', violations: [{ kind: 'foreign-domain', count: 1 }] });
    expect(log.lines.some((l) => l.alert === true && l.serial === p.serial && l.level >= 50 && /violates the audit policy/.test(l.msg))).toBe(true);

    const refused = await w.est(p, 'simpleenroll');
    expect(refused.status).toBe(406);
    expect(refused.text).toMatch(/^audit-policy-failed: .*foreign-domain/);
    expect(await reg.store.listCertificates(p.serial)).toEqual([]);

    // Operator view and override.
    expect((await w.admin(`/admin/pledges/${p.serial}/audit`, 'GET', undefined, 'x'.repeat(20))).status).toBe(401);
    const view = await w.admin(`/admin/pledges/${p.serial}/audit`);
    expect(view.status).toBe(200);
    expect(JSON.parse(view.body.toString())).toMatchObject({ mode: 'enforce', audit: { status: 'failed' } });
    expect((await w.admin(`/admin/pledges/${p.serial}/audit/clear`, 'POST', { by: 'x', extra: 1 })).status).toBe(400);
    const cleared = await w.admin(`/admin/pledges/${p.serial}/audit/clear`, 'POST', { by: 'alice' });
    expect(cleared.status, cleared.body.toString()).toBe(200);
    expect(JSON.parse(cleared.body.toString()).audit).toMatchObject({ status: 'cleared', clearedBy: 'alice', clearedStatus: 'failed' });
    expect((await w.admin(`/admin/pledges/${p.serial}/audit/clear`, 'POST', {})).status).toBe(409);
    expect((await w.events(p.serial)).at(-1)).toMatchObject({ type: 'audit-policy-cleared', detail: { by: 'alice', was: 'failed' } });

    const e = await w.est(p, 'simpleenroll');
    expect(e.status, e.text).toBe(200);
  });

  it('a nonceless event fails the policy (requireNonce)', async () => {
    const p = fx.pledges[2]!;
    await w.onboard(p);
    const ours = Buffer.from(domainIdOf(fx.domainCa)).toString('base64');
    masa.extraAuditEvents = [{ date: new Date().toISOString(), domainID: ours, nonce: null, assertion: 'logged' }];
    try {
      await w.voucherStatus(p, p.serial);
    } finally { masa.extraAuditEvents = []; }
    expect(await w.state(p.serial)).toMatchObject({ status: 'failed', violations: [{ kind: 'nonceless', domainID: ours, count: 1 }] });
    expect((await w.est(p, 'simpleenroll')).status).toBe(406);
  });

  it('no verdict yet (no voucher_status): 202 + Retry-After while the log is fetched, then enrollment', async () => {
    const p = fx.pledges[3]!;
    await w.onboard(p);
    const first = await w.est(p, 'simpleenroll');
    expect(first.status).toBe(202);
    expect(first.retryAfter).toBe('1');
    expect(first.text).toMatch(/^pending: .*audit-log policy/);
    await reg.auditPolicy.settled(p.serial);
    expect(await w.state(p.serial)).toMatchObject({ status: 'passed' });
    const e = await w.est(p, 'simpleenroll');
    expect(e.status, e.text).toBe(200);
  });

  it('MASA unreachable for the audit log: 202 while retrying, enrollment once it is back', async () => {
    const p = fx.pledges[4]!;
    await w.onboard(p);
    await masa.stop();
    try {
      await w.voucherStatus(p, p.serial);
      expect(await w.state(p.serial)).toMatchObject({ status: 'unavailable' });
      expect((await w.events(p.serial)).at(-1)).toMatchObject({ detail: { verdict: 'unavailable' } });
      expect(log.lines.some((l) => l.alert === true && l.serial === p.serial && /unavailable/.test(l.msg))).toBe(true);
      const held = await w.est(p, 'simpleenroll');
      expect(held.status).toBe(202);
      expect(held.text).toMatch(/could not be fetched/);
      await reg.auditPolicy.settled(p.serial);
      expect(await reg.store.listCertificates(p.serial)).toEqual([]);
    } finally {
      await masa.start();
    }
    expect((await w.est(p, 'simpleenroll')).status).toBe(202); // starts a new round
    await reg.auditPolicy.settled(p.serial);
    const e = await w.est(p, 'simpleenroll');
    expect(e.status, e.text).toBe(200);
  });

  it('a violation found after enrollment blocks simplereenroll until cleared', async () => {
    const p = fx.pledges[0]!; // enrolled in the first test
    const e = await w.est(p, 'simpleenroll'); // a fresh LDevID to renew
    expect(e.status, e.text).toBe(200);
    const ldevid = e.creds!;
    masa.extraAuditEvents = [await foreignEvent(fx)];
    try {
      await w.voucherStatus(ldevid, p.serial); // telemetry on the LDevID session also triggers the audit
    } finally { masa.extraAuditEvents = []; }
    expect(await w.state(p.serial)).toMatchObject({ status: 'failed' });
    const same: Array<[string, string]> = [['CN', p.serial], ['serialNumber', p.serial]];
    const refused = await w.est(ldevid, 'simplereenroll', same);
    expect(refused.status).toBe(406);
    expect(refused.text).toMatch(/^audit-policy-failed/);
    // A later clean log does not lift the standing violation by itself.
    await w.voucherStatus(ldevid, p.serial);
    expect(await w.state(p.serial)).toMatchObject({ status: 'failed' });
    expect((await w.events(p.serial)).at(-1)).toMatchObject({ detail: { verdict: 'passed', standing: 'failed' } });
    expect((await w.admin(`/admin/pledges/${p.serial}/audit/clear`, 'POST', { by: 'bob' })).status).toBe(200);
    const renewed = await w.est(ldevid, 'simplereenroll', same);
    expect(renewed.status, renewed.text).toBe(200);
  });
});

describe('audit-log policy, warn and off (memory store)', () => {
  let fx: Fixture;
  let masa: TestMasa;
  let reg: Registrar;
  const log = capture();
  const w = world(() => reg, () => fx);

  beforeAll(async () => {
    // Mode left at its default; only the retry pacing is shortened.
    fx = await makeFixture({ devices: 3, overrides: (c) => { c.auditPolicy.attempts = 2; c.auditPolicy.retryDelayMs = 20; } });
    masa = await startTestMasa(fx);
  });
  afterAll(async () => {
    await reg?.stop();
    await masa?.stop();
  });

  it('defaults to warn: a violation is recorded and alerted, enrollment goes ahead', async () => {
    expect(fx.config.auditPolicy).toMatchObject({ mode: 'warn', requireNonce: true, allowDomainIds: [] });
    reg = createRegistrar(fx.config, { logger: log.logger });
    await reg.start();
    const p = fx.pledges[0]!;
    await w.onboard(p);
    masa.extraAuditEvents = [await foreignEvent(fx)];
    try {
      await w.voucherStatus(p, p.serial);
    } finally { masa.extraAuditEvents = []; }
    expect(await w.state(p.serial)).toMatchObject({ status: 'failed' });
    expect(log.lines.some((l) => l.alert === true && l.serial === p.serial && l.level === 40 && /violates the audit policy/.test(l.msg))).toBe(true);
    expect((await w.est(p, 'simpleenroll')).status).toBe(200);
  });

  it('warn: an unreachable MASA is logged, enrollment goes ahead', async () => {
    const p = fx.pledges[1]!;
    await w.onboard(p);
    await masa.stop();
    try {
      await w.voucherStatus(p, p.serial);
    } finally { await masa.start(); }
    expect(await w.state(p.serial)).toMatchObject({ status: 'unavailable' });
    expect(log.lines.some((l) => l.serial === p.serial && l.level === 40 && /MASA audit log unavailable/.test(l.msg))).toBe(true);
    expect((await w.est(p, 'simpleenroll')).status).toBe(200);
    await reg.stop();
  });

  it('off: no audit-log fetch, no verdict', async () => {
    reg = createRegistrar({ ...fx.config, auditPolicy: { ...fx.config.auditPolicy, mode: 'off' } }, { logger: log.logger });
    await reg.start();
    const p = fx.pledges[2]!;
    await w.onboard(p);
    masa.extraAuditEvents = [await foreignEvent(fx)];
    try {
      await w.voucherStatus(p, p.serial);
    } finally { masa.extraAuditEvents = []; }
    expect(await w.state(p.serial)).toBeUndefined();
    expect(await w.events(p.serial)).toEqual([]);
    expect((await w.est(p, 'simpleenroll')).status).toBe(200);
  });
});

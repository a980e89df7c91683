/**
 * One admission policy and one audit-log policy per registrar, handed explicitly by createRegistrar
 * to every consumer: an operator's admission-mode change through the admin API is enforced on the
 * next HTTPS voucher request (and so on EST, which needs that voucher) and on the next CoAPS one;
 * the audit-log policy gates HTTPS simpleenroll and CoAPS /sen alike, and CoAPS /vs starts it.
 * Runs against createRegistrar's own CoAPS listener (not a test-built services object).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { createCsr } from '@brski/shared/pki/csr';
import { generateKeyPair } from '@brski/shared/pki/keys';
import { encodeStatusTelemetry } from '@brski/shared/voucher/telemetry';
import { CoapsClient } from '@brski/pledge-sim/coaps/coap-client';
import { auditStateOf } from '../src/authority/audit-policy.ts';
import { createRegistrar, type Registrar } from '../src/server.ts';
import { ensureDtlsAddon } from './coap/harness.ts';
import { makeFixture, type Fixture, type TestPledge } from './helpers/fixture.ts';
import { makePvr, request } from './helpers/client.ts';
import { startTestMasa, type TestMasa } from './helpers/test-masa.ts';

let fx: Fixture;
let masa: TestMasa;
let reg: Registrar;

beforeAll(async () => {
  ensureDtlsAddon();
  fx = await makeFixture({
    devices: 3,
    overrides: (c) => {
      c.policy.approvalRetryAfter = 1;
      c.auditPolicy = { mode: 'enforce', allowDomainIds: [], requireNonce: true, attempts: 2, retryDelayMs: 20, retryAfter: 1 };
      c.coaps = { enabled: true, host: '127.0.0.1', port: 0, requireClientCert: true };
    },
  });
  masa = await startTestMasa(fx);
  reg = createRegistrar(fx.config);
  await reg.start();
}, 60_000);
afterAll(async () => {
  await reg?.stop();
  await masa?.stop();
});

const auth = () => ({ authorization: `Bearer ${fx.adminToken}` });
const admin = (path: string, method: string, body?: unknown) => request(`${reg.adminUrl}/admin${path}`, {
  method, headers: { ...auth(), ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}),
});

async function httpVoucher(p: TestPledge) {
  const { bytes } = await makePvr('jws', p.signer, p.serial, { registrarCert: fx.registrarCert });
  return request(`${reg.url}/.well-known/brski/requestvoucher`, {
    method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE.jws, accept: VOUCHER_MEDIA_TYPE.jws }, body: bytes, key: p.keyPem, cert: p.certPem,
  });
}

async function httpEnroll(p: TestPledge) {
  const csr = await createCsr([['CN', p.serial]], new SoftwareSigner(generateKeyPair('P-256').privateKey));
  return request(`${reg.url}/.well-known/est/simpleenroll`, {
    method: 'POST', headers: { 'content-type': 'application/pkcs10' }, body: Buffer.from(csr).toString('base64'), key: p.keyPem, cert: p.certPem,
  });
}

async function coaps(p: TestPledge): Promise<CoapsClient> {
  return CoapsClient.connect({ host: '127.0.0.1', port: reg.coapsPort, certChain: p.certPem + fx.pem('idevid-ca.pem'), key: p.keyPem });
}

async function coapsVoucher(c: CoapsClient, p: TestPledge) {
  const { bytes } = await makePvr('cose', p.signer, p.serial, { registrarCert: c.dtls.serverCertificates[0]!, proximity: 'pubk-sha256' });
  return c.request({ method: 'POST', path: '/.well-known/brski/rv', payload: bytes, contentFormat: 836, accept: 836 });
}

async function coapsEnroll(c: CoapsClient, p: TestPledge) {
  const csr = await createCsr([['CN', p.serial]], new SoftwareSigner(generateKeyPair('P-256').privateKey));
  return c.request({ method: 'POST', path: '/.well-known/est/sen', contentFormat: 286, accept: 287, payload: csr });
}

describe('one policy object per registrar, seen by admin API, HTTPS and CoAPS', () => {
  it('an admission mode set through the admin API holds back the next voucher over HTTPS (so EST too) and over CoAPS', async () => {
    expect(reg.coapsPort).toBeGreaterThan(0);
    const [p0, p1] = [fx.pledges[0]!, fx.pledges[1]!];
    const set = await admin('/policy/mode', 'PUT', { mode: 'approve', by: 'alice' });
    expect(set.status, set.body.toString()).toBe(200);
    expect((await reg.admission.currentMode()).mode).toBe('approve');

    expect((await httpVoucher(p0)).status).toBe(202);
    expect((await httpEnroll(p0)).status).toBe(403); // no voucher, no certificate
    const c = await coaps(p1);
    try {
      expect((await coapsVoucher(c, p1)).code).toBe('5.03'); // pending
    } finally { c.close(); }
    expect((await reg.store.getApproval(p0.serial))?.decision).toBe('pending');
    expect((await reg.store.getApproval(p1.serial))?.decision).toBe('pending');

    // Back to the configured mode (accept) through the admin API: the same pledge now gets its voucher.
    expect((await admin('/policy/mode', 'DELETE')).status).toBe(200);
    expect((await httpVoucher(p0)).status).toBe(200);
  });

  it('the audit-log policy (enforce) gates HTTPS simpleenroll and CoAPS /sen; CoAPS /vs starts it', async () => {
    const [p0, p1] = [fx.pledges[0]!, fx.pledges[1]!];
    const auditRounds = async (serial: string) => (await reg.store.pledgeEvents(serial)).filter((e) => e.type === 'audit-policy').length;
    // p0 holds a voucher from the previous test but sent no voucher_status: no verdict yet, EST waits.
    const held0 = await httpEnroll(p0);
    expect(held0.status, held0.body.toString()).toBe(202);
    await reg.auditPolicy.settled(p0.serial);
    const before0 = await auditRounds(p0.serial);
    const pass = await request(`${reg.url}/.well-known/brski/voucher_status`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: encodeStatusTelemetry({ status: true }, 'json'), key: p0.keyPem, cert: p0.certPem,
    });
    expect(pass.status).toBe(200);
    await reg.auditPolicy.settled(p0.serial);
    expect(await auditRounds(p0.serial)).toBe(before0 + 1); // voucher_status over HTTPS ran a round
    expect(auditStateOf(await reg.store.getPledge(p0.serial))?.status).toBe('passed');
    expect((await httpEnroll(p0)).status).toBe(200);

    const c = await coaps(p1);
    try {
      const rv = await coapsVoucher(c, p1);
      expect(rv.code, rv.payload.toString()).toBe('2.04');
      const held = await coapsEnroll(c, p1);
      expect(held.code, held.payload.toString()).toBe('5.03'); // no verdict for this voucher yet
      await reg.auditPolicy.settled(p1.serial);
      const before1 = await auditRounds(p1.serial);
      const vs = await c.request({ method: 'POST', path: '/.well-known/brski/vs', contentFormat: 60, payload: encodeStatusTelemetry({ version: 1, status: true }, 'cbor') });
      expect(vs.code, vs.payload.toString()).toBe('2.04');
      await reg.auditPolicy.settled(p1.serial);
      expect(await auditRounds(p1.serial)).toBe(before1 + 1); // /vs over CoAPS ran a round
      expect(auditStateOf(await reg.store.getPledge(p1.serial))?.status).toBe('passed');
      const sen = await coapsEnroll(c, p1);
      expect(sen.code, sen.payload.toString()).toBe('2.04');
    } finally { c.close(); }
  });
});

/**
 * Refusals of the voucher path, each with a clear status and nothing stored: untrusted
 * manufacturer, PVR not signed by the TLS client, proximity not ours, serial mismatch, bad
 * bodies; MASA down (202 + Retry-After, then the voucher), MASA refusals mapped, bad vouchers
 * not relayed; admission policies (allowlist, approve queue).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signVoucherArtifact } from '@brski/shared/envelope/artifact';
import { VOUCHER_MEDIA_TYPE, type VoucherFormat } from '@brski/shared/media';
import { createRegistrar, type Registrar } from '../src/server.ts';
import { type Fixture, type TestPledge } from './helpers/fixture.ts';
import { makePvr, request, type HttpResult } from './helpers/client.ts';
import type { TestMasa } from './helpers/test-masa.ts';
import { startRegistrarWorld, type RegistrarWorld } from './helpers/world.ts';

let world: RegistrarWorld;
let fx: Fixture;
let masa: TestMasa;
let reg: Registrar;

beforeAll(async () => {
  world = await startRegistrarWorld({ devices: 12 });
  ({ fx, masa, reg } = world);
});
afterAll(async () => { await world?.stop(); });

function post(r: Registrar, p: Pick<TestPledge, 'keyPem' | 'certPem'> | undefined, body: Uint8Array | string, format: VoucherFormat | string = 'cms',
  headers: Record<string, string> = {}): Promise<HttpResult> {
  const type = (VOUCHER_MEDIA_TYPE as Record<string, string>)[format] ?? format;
  return request(`${r.url}/.well-known/brski/requestvoucher`, {
    method: 'POST', headers: { 'content-type': type, ...headers }, body, ...(p ? { key: p.keyPem, cert: p.certPem } : {}),
  });
}

describe('pledge authentication and PVR checks', () => {
  it('refuses an IDevID of an untrusted manufacturer (403) and stores nothing', async () => {
    const rogue = await fx.foreignPledge('ROGUE-1');
    const { bytes } = await makePvr('cms', rogue.signer, rogue.serial, { registrarCert: fx.registrarCert });
    const res = await post(reg, rogue, bytes);
    expect(res.status).toBe(403);
    expect(res.body.toString()).toMatch(/untrusted-chain/);
    expect(await reg.store.getPledge('ROGUE-1')).toBeUndefined();
  });

  it('refuses a request without a client certificate (401)', async () => {
    const p = fx.pledges[0]!;
    const { bytes } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx.registrarCert });
    expect((await post(reg, undefined, bytes)).status).toBe(401);
  });

  it.each(['cms', 'jws', 'cose'] as const)('refuses a %s PVR signed by a key other than the TLS client key (403)', async (format) => {
    const [a, b] = [fx.pledges[0]!, fx.pledges[1]!];
    const { bytes } = await makePvr(format, b.signer, a.serial, { registrarCert: fx.registrarCert });
    const res = await post(reg, a, bytes, format);
    expect(res.status).toBe(403);
    expect(res.body.toString()).toMatch(/signer-mismatch|bad-signature|untrusted/);
    expect(await reg.store.getPledge(a.serial)).toBeUndefined();
  });

  it.each(['cert', 'pubk', 'pubk-sha256'] as const)('answers 401 and closes the connection when proximity-%s is not ours', async (proximity) => {
    const p = fx.pledges[0]!;
    const { bytes } = await makePvr('jws', p.signer, p.serial, { registrarCert: await fx.foreignRegistrarCert(), proximity });
    const res = await post(reg, p, bytes, 'jws');
    expect(res.status).toBe(401);
    expect(res.body.toString()).toMatch(/proximity-mismatch/);
    expect(res.headers['connection']).toBe('close');
    expect(await reg.store.getPledge(p.serial)).toBeUndefined();
  });

  it('refuses a PVR whose serial-number differs from the IDevID (403)', async () => {
    const p = fx.pledges[0]!;
    const { bytes } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx.registrarCert, serial: 'SOMEONE-ELSE' });
    const res = await post(reg, p, bytes);
    expect(res.status).toBe(403);
    expect(res.body.toString()).toMatch(/serial-mismatch/);
    expect(await reg.store.getPledge(p.serial)).toBeUndefined();
  });

  it('refuses malformed, oversized, unknown-type and unacceptable requests', async () => {
    const p = fx.pledges[0]!;
    expect((await post(reg, p, 'garbage that is no CMS')).status).toBe(400);
    expect((await post(reg, p, new Uint8Array(0))).status).toBe(400);
    expect((await post(reg, p, new Uint8Array(fx.config.limits.bodyBytes + 1))).status).toBe(413);
    expect((await post(reg, p, '{}', 'application/json')).status).toBe(415);
    const { bytes } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx.registrarCert });
    // An Accept naming no voucher format: 406 (one that excludes only the PVR's own format is forwarded: pvr-variants.test.ts).
    expect((await post(reg, p, bytes, 'cms', { accept: 'application/json' })).status).toBe(406);
    // A PVR lacking the proximity leaf is malformed, not silently accepted.
    const noProx = await signVoucherArtifact('cms', 'voucher-request', { serialNumber: p.serial, assertion: 'proximity', nonce: new Uint8Array(16).fill(1) }, p.signer);
    expect((await post(reg, p, noProx)).status).toBe(400);
    expect(await reg.store.getPledge(p.serial)).toBeUndefined();
  });

  it('accepts base64 text of a CMS PVR (interop leniency) with the same checks', async () => {
    const p = fx.pledges[11]!;
    const { bytes } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx.registrarCert });
    const res = await post(reg, p, Buffer.from(bytes).toString('base64'));
    expect(res.status, res.body.toString()).toBe(200);
  });
});

describe('MASA failures', () => {
  it('answers 202 + Retry-After while the MASA is down, then relays the voucher for the identical PVR', async () => {
    const p = fx.pledges[2]!;
    const { bytes } = await makePvr('jws', p.signer, p.serial, { registrarCert: fx.registrarCert });
    await masa.stop();
    const first = await post(reg, p, bytes, 'jws');
    expect(first.status).toBe(202);
    expect(Number(first.headers['retry-after'])).toBeGreaterThan(0);
    expect((await reg.store.getPledge(p.serial))?.state).toBe('requested');
    await masa.start();
    let res: HttpResult = first;
    for (let i = 0; i < 100 && res.status === 202; i++) {
      await new Promise((r) => setTimeout(r, 50));
      res = await post(reg, p, bytes, 'jws');
    }
    expect(res.status, res.body.toString()).toBe(200);
    expect((await reg.store.getPledge(p.serial))?.state).toBe('voucher-issued');
  });

  it('answers 202 when the MASA hangs past the timeout', async () => {
    const p = fx.pledges[3]!;
    masa.mode = { kind: 'hang' };
    const { bytes } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx.registrarCert });
    const res = await post(reg, p, bytes);
    masa.mode = { kind: 'ok' };
    expect(res.status).toBe(202);
  });

  it.each([[404, 404], [403, 403], [406, 406], [401, 502], [400, 502]])('maps a MASA %i to %i for the pledge, also on the identical retry', async (masaStatus, want) => {
    const p = fx.pledges[4 + [404, 403, 406, 401, 400].indexOf(masaStatus)]!;
    masa.mode = { kind: 'refuse', status: masaStatus, text: 'no such device here' };
    const { bytes } = await makePvr('cose', p.signer, p.serial, { registrarCert: fx.registrarCert, proximity: 'pubk' });
    const res = await post(reg, p, bytes, 'cose');
    masa.mode = { kind: 'ok' };
    expect(res.status).toBe(want);
    expect((await reg.store.getPledge(p.serial))).toMatchObject({ state: 'failed' });
    expect(await reg.store.getVoucher(p.serial)).toBeUndefined();
    expect((await post(reg, p, bytes, 'cose')).status).toBe(want);
  });

  it.each(['wrong-pin', 'wrong-nonce'] as const)('does not relay a voucher with a %s (502)', async (kind) => {
    const p = fx.pledges[kind === 'wrong-pin' ? 9 : 10]!;
    masa.mode = { kind };
    const { bytes } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx.registrarCert });
    const res = await post(reg, p, bytes);
    masa.mode = { kind: 'ok' };
    expect(res.status).toBe(502);
    expect(await reg.store.getVoucher(p.serial)).toBeUndefined();
  });
});

describe('admission policies', () => {
  it('allowlist: refuses unlisted pledges (404), admits listed ones and admin additions', async () => {
    // Glob: PSIM-00000? admits pledges 1..9, not 11.
    const r = createRegistrar({ ...fx.config, policy: { ...fx.config.policy, mode: 'allowlist', allowlist: [fx.pledges[0]!.serial.replace(/\d$/, '?')] } });
    await r.start();
    try {
      const [listed, other] = [fx.pledges[0]!, fx.pledges[10]!];
      expect((await post(r, listed, (await makePvr('cms', listed.signer, listed.serial, { registrarCert: fx.registrarCert })).bytes)).status).toBe(200);
      const otherPvr = (await makePvr('cms', other.signer, other.serial, { registrarCert: fx.registrarCert })).bytes;
      expect((await post(r, other, otherPvr)).status).toBe(404);
      const add = await request(`${r.adminUrl}/admin/allowlist`, { method: 'POST', headers: { authorization: `Bearer ${fx.adminToken}` }, body: JSON.stringify({ entry: other.serial }) });
      expect(add.status).toBe(201);
      const fresh = (await makePvr('cms', other.signer, other.serial, { registrarCert: fx.registrarCert })).bytes;
      expect((await post(r, other, fresh)).status).toBe(200);
    } finally { await r.stop(); }
  });

  it('approve: 202 + Retry-After until an operator approves; denied pledges are refused', async () => {
    const r = createRegistrar({ ...fx.config, policy: { ...fx.config.policy, mode: 'approve' } });
    await r.start();
    const auth = { authorization: `Bearer ${fx.adminToken}` };
    try {
      const [a, b] = [fx.pledges[0]!, fx.pledges[1]!];
      const pvrA = (await makePvr('cms', a.signer, a.serial, { registrarCert: fx.registrarCert })).bytes;
      const waiting = await post(r, a, pvrA);
      expect(waiting.status).toBe(202);
      expect(waiting.headers['retry-after']).toBe(String(fx.config.policy.approvalRetryAfter));
      expect((await r.store.getPledge(a.serial))?.state).toBe('waiting-approval');
      const queue = JSON.parse((await request(`${r.adminUrl}/admin/approvals?decision=pending`, { headers: auth })).body.toString());
      expect(queue.approvals.map((x: { serial: string }) => x.serial)).toEqual([a.serial]);
      expect((await request(`${r.adminUrl}/admin/pledges/${a.serial}/approve`, { method: 'POST', headers: auth })).status).toBe(200);
      expect((await post(r, a, pvrA)).status).toBe(200);

      const pvrB = (await makePvr('cms', b.signer, b.serial, { registrarCert: fx.registrarCert })).bytes;
      expect((await post(r, b, pvrB)).status).toBe(202);
      expect((await request(`${r.adminUrl}/admin/pledges/${b.serial}/deny`, { method: 'POST', headers: auth })).status).toBe(200);
      expect((await post(r, b, pvrB)).status).toBe(404);
    } finally { await r.stop(); }
  });
});

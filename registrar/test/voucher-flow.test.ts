/**
 * Full voucher flow over real HTTPS with client certificates, per voucher format, against the
 * test MASA: PVR → registrar checks → RVR (checked by the MASA) → voucher checked and relayed →
 * voucher_status / enrollstatus stored.
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectVoucherArtifact, verifyVoucherArtifact } from '@brski/shared/envelope/artifact';
import { VOUCHER_MEDIA_TYPE, type VoucherFormat } from '@brski/shared/media';
import { idevidIssuerOf } from '@brski/shared/pki/identity';
import { encodeStatusTelemetry } from '@brski/shared/voucher/telemetry';
import type { Voucher } from '@brski/shared/voucher/model';
import type { Registrar } from '../src/server.ts';
import { type Fixture } from './helpers/fixture.ts';
import { makePvr, request } from './helpers/client.ts';
import type { TestMasa } from './helpers/test-masa.ts';
import { startRegistrarWorld, type RegistrarWorld } from './helpers/world.ts';

let world: RegistrarWorld;
let fx: Fixture;
let masa: TestMasa;
let reg: Registrar;

beforeAll(async () => {
  world = await startRegistrarWorld({ devices: 4 });
  ({ fx, masa, reg } = world);
});
afterAll(async () => { await world?.stop(); });

const cases: Array<[VoucherFormat, 'cert' | 'pubk' | 'pubk-sha256', number]> = [['cms', 'cert', 0], ['jws', 'pubk-sha256', 1], ['cose', 'pubk', 2]];

describe.each(cases)('voucher flow (%s, proximity %s)', (format, proximity, index) => {
  it('relays a verified voucher, builds a correct RVR, stores state and telemetry', async () => {
    const p = fx.pledges[index]!;
    const { bytes: pvr, nonce } = await makePvr(format, p.signer, p.serial, { registrarCert: fx.registrarCert, proximity });
    const res = await request(`${reg.url}/.well-known/brski/requestvoucher`, {
      method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE[format], accept: VOUCHER_MEDIA_TYPE[format] }, body: pvr, key: p.keyPem, cert: p.certPem,
    });
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.headers['content-type']).toBe(VOUCHER_MEDIA_TYPE[format]);
    // The registrar presented the certificate the voucher pins a parent of.
    expect(res.serverCert?.raw.equals(fx.registrarCert.raw)).toBe(true);

    // What the pledge does: verify against the manufacturer anchor.
    const manufacturerCa = new X509Certificate(fx.pem('manufacturer-ca.pem'));
    const signer = new X509Certificate(fx.pem('masa-signer.pem'));
    const v = await verifyVoucherArtifact<Voucher>(format, new Uint8Array(res.body), {
      anchors: [manufacturerCa], kind: 'voucher', strict: false, role: 'voucher', ...(format === 'cose' ? { signerCertificate: signer } : {}),
    });
    expect(v.decoded.data.serialNumber).toBe(p.serial);
    expect(Buffer.from(v.decoded.data.nonce!).equals(Buffer.from(nonce))).toBe(true);
    expect(Buffer.from(v.decoded.data.pinnedDomainCert!).equals(fx.domainCa.raw)).toBe(true);
    if (format === 'cose') expect(inspectVoucherArtifact(format, new Uint8Array(res.body), { strict: false }).envelope.embedded).toHaveLength(0);

    // The RVR as the MASA received it (digest §5.3, §12 Registrar 4, 14).
    const rvr = masa.lastRvr!;
    expect(rvr.format).toBe(format);
    expect(rvr.data.serialNumber).toBe(p.serial);
    expect(Buffer.from(rvr.data.idevidIssuer!).equals(Buffer.from(idevidIssuerOf(p.cert)))).toBe(true);
    expect(Buffer.from(rvr.data.priorSignedVoucherRequest!).equals(Buffer.from(pvr))).toBe(true);
    expect(Buffer.from(rvr.data.nonce!).equals(Buffer.from(nonce))).toBe(true);
    expect(rvr.data.assertion).toBe('proximity');
    expect(rvr.data.proximityRegistrarCert ?? rvr.data.proximityRegistrarPubk ?? rvr.data.proximityRegistrarPubkSha256).toBeUndefined();
    if (format === 'cose') expect(rvr.embedded.map((c) => c.fingerprint256)).toEqual(expect.arrayContaining([p.cert.fingerprint256, fx.registrarCert.fingerprint256]));
    expect(masa.lastClientCert?.raw.equals(fx.registrarCert.raw)).toBe(true); // mTLS with the registrar cert

    const stored = await reg.store.getPledge(p.serial);
    expect(stored).toMatchObject({ state: 'voucher-issued', voucherFormat: format, manufacturer: 'PSIM Manufacturing' });
    expect((await reg.store.getVoucher(p.serial))?.rvr).toEqual(rvr.bytes);

    // The identical PVR again (a 202 retry that crossed the answer): same voucher, no new MASA call.
    const calls = masa.calls;
    const again = await request(`${reg.url}/.well-known/brski/requestvoucher`, {
      method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE[format] }, body: pvr, key: p.keyPem, cert: p.certPem,
    });
    expect(again.status).toBe(200);
    expect(again.body.equals(res.body)).toBe(true);
    expect(masa.calls).toBe(calls);

    // Telemetry: JSON for BRSKI, CBOR as cBRSKI pledges send it.
    const enc = format === 'cose' ? 'cbor' : 'json';
    const vs = await request(`${reg.url}/.well-known/brski/voucher_status`, {
      method: 'POST', headers: { 'content-type': enc === 'cbor' ? 'application/cbor' : 'application/json' },
      body: encodeStatusTelemetry({ status: false, reason: 'pin mismatch (test)', reasonContext: { step: 'pin' } }, enc), key: p.keyPem, cert: p.certPem,
    });
    expect(vs.status).toBe(200);
    const after = await reg.store.getPledge(p.serial);
    expect(after?.voucherStatus).toMatchObject({ status: false, reason: 'pin mismatch (test)', version: 1, authenticated: true });
    expect(after?.state).toBe('failed');
    expect((await reg.store.pledgeEvents(p.serial)).map((e) => e.type)).toEqual(expect.arrayContaining(['voucher-requested', 'voucher-issued', 'voucher-status']));
  });
});

describe('legacy path and admin view', () => {
  it('serves requestvoucher on /.well-known/est/requestvoucher too', async () => {
    const p = fx.pledges[3]!;
    const { bytes } = await makePvr('jws', p.signer, p.serial, { registrarCert: fx.registrarCert });
    const res = await request(`${reg.url}/.well-known/est/requestvoucher`, {
      method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE.jws }, body: bytes, key: p.keyPem, cert: p.certPem,
    });
    expect(res.status, res.body.toString()).toBe(200);
  });

  it('lists pledges with state on the admin API only with the token', async () => {
    const denied = await request(`${reg.adminUrl}/admin/pledges`);
    expect(denied.status).toBe(401);
    const wrong = await request(`${reg.adminUrl}/admin/pledges`, { headers: { authorization: 'Bearer nope-nope-nope-nope' } });
    expect(wrong.status).toBe(401);
    const ok = await request(`${reg.adminUrl}/admin/pledges`, { headers: { authorization: `Bearer ${fx.adminToken}` } });
    expect(ok.status).toBe(200);
    const { pledges } = JSON.parse(ok.body.toString()) as { pledges: Array<{ serial: string; state: string; createdAt: string }> };
    expect(pledges.map((x) => x.serial)).toEqual(expect.arrayContaining([fx.pledges[3]!.serial]));
    expect(pledges.every((x) => typeof x.createdAt === 'string')).toBe(true);
  });

  it('fetches the MASA audit log with the stored RVR and flags foreign domains', async () => {
    const serial = fx.pledges[3]!.serial;
    const auth = { authorization: `Bearer ${fx.adminToken}` };
    const clean = await request(`${reg.adminUrl}/admin/pledges/${serial}/auditlog`, { method: 'POST', headers: auth });
    expect(clean.status, clean.body.toString()).toBe(200);
    expect(JSON.parse(clean.body.toString())).toMatchObject({ onlyOurDomain: true, foreignEvents: [] });
    masa.extraAuditEvents.push({ date: new Date().toISOString(), domainID: Buffer.alloc(20, 7).toString('base64'), nonce: null, assertion: 'logged' });
    const dirty = await request(`${reg.adminUrl}/admin/pledges/${serial}/auditlog`, { method: 'POST', headers: auth });
    expect(JSON.parse(dirty.body.toString())).toMatchObject({ onlyOurDomain: false });
    masa.extraAuditEvents.length = 0;
  });

  it('serves /healthz and /metrics', async () => {
    expect((await request(`${reg.url}/healthz`)).status).toBe(200);
    const m = await request(`${reg.adminUrl}/metrics`);
    expect(m.body.toString()).toContain('registrar_voucher_requests_total');
  });
});

/**
 * Status telemetry must not be a way back in (found by an audit): a revoked device, or a same-serial
 * stranger (another IDevID from the same manufacturer), posting voucher_status / enrollstatus
 * `false` used to reset the pledge's state to `failed`, which reopened requestvoucher for the
 * revoked device and switched off clone detection for the stranger. Reports are still accepted
 * and logged (digest §7, §12 Registrar 12), but only the pledge's own current credential changes
 * its record, and never out of `revoked`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSoftwareSigner, SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { createCsr } from '@brski/shared/pki/csr';
import { decodeBase64Body } from '@brski/shared/est/base64-body';
import { decodeCertsOnly } from '@brski/shared/est/certs-only';
import { certificateToPem, generateKeyPair, idevidProfile, issueCertificate, privateKeyToPem } from '@brski/shared/pki/index';
import { encodeStatusTelemetry } from '@brski/shared/voucher/telemetry';
import type { Registrar } from '../src/server.ts';
import { type Fixture, type TestPledge } from './helpers/fixture.ts';
import { makePvr, request } from './helpers/client.ts';
import type { TestMasa } from './helpers/test-masa.ts';
import { startRegistrarWorld, type RegistrarWorld } from './helpers/world.ts';

let world: RegistrarWorld;
let fx: Fixture;
let masa: TestMasa;
let reg: Registrar;

beforeAll(async () => {
  world = await startRegistrarWorld({ devices: 3 });
  ({ fx, masa, reg } = world);
});
afterAll(async () => { await world?.stop(); });

type Who = Pick<TestPledge, 'serial' | 'signer' | 'keyPem' | 'certPem'>;

/** A second IDevID for the same serial, issued by the same manufacturer CA (a clone or a re-issue). */
async function sameSerialStranger(serial: string): Promise<Who> {
  const ca = loadSoftwareSigner(fx.manifest.idevidCa.key, [fx.manifest.idevidCa.cert]);
  const k = generateKeyPair('P-256');
  const cert = await issueCertificate(idevidProfile(serial, fx.manifest.masaUrl, k.publicKey), { signer: ca, certificate: ca.certificates[0]! });
  return { serial, signer: new SoftwareSigner(k.privateKey, [cert]), keyPem: privateKeyToPem(k.privateKey), certPem: certificateToPem(cert) };
}

const requestVoucher = async (p: Who) => {
  const { bytes } = await makePvr('jws', p.signer, p.serial, { registrarCert: fx.registrarCert });
  return request(`${reg.url}/.well-known/brski/requestvoucher`, {
    method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE.jws }, body: bytes, key: p.keyPem, cert: p.certPem });
};
const report = (p: Who, path: 'voucher_status' | 'enrollstatus', status: boolean) => request(`${reg.url}/.well-known/brski/${path}`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, key: p.keyPem, cert: p.certPem,
  body: encodeStatusTelemetry(status ? { status } : { status, reason: 'test failure' }, 'json') });
const enroll = async (p: Who) => {
  const key = generateKeyPair('P-256').privateKey;
  const csr = await createCsr([['CN', p.serial]], new SoftwareSigner(key));
  const r = await request(`${reg.url}/.well-known/est/simpleenroll`, {
    method: 'POST', headers: { 'content-type': 'application/pkcs10' }, body: Buffer.from(csr).toString('base64'), key: p.keyPem, cert: p.certPem });
  const ldevid = r.status === 200 ? decodeCertsOnly(decodeBase64Body(r.body))[0] : undefined;
  return { status: r.status, ldevid, keyPem: privateKeyToPem(key) };
};

describe('status telemetry cannot reopen onboarding', () => {
  it('a revoked device reporting failure stays revoked: no voucher, no certificate', async () => {
    const p = fx.pledges[0]!;
    expect((await requestVoucher(p)).status).toBe(200);
    const revoke = await request(`${reg.adminUrl}/admin/pledges/${p.serial}/revoke`, {
      method: 'POST', headers: { authorization: `Bearer ${fx.adminToken}`, 'content-type': 'application/json' }, body: '{}' });
    expect(revoke.status, revoke.body.toString()).toBe(200);

    for (const path of ['enrollstatus', 'voucher_status'] as const) {
      const r = await report(p, path, false);
      expect(r.status).toBe(200); // accepted and logged (§12 Registrar 12) ...
      expect((await reg.store.getPledge(p.serial))?.state).toBe('revoked'); // ... but not a way out of revoked
    }
    const events = await reg.store.pledgeEvents(p.serial);
    expect(events.filter((e) => e.type === 'enroll-status' || e.type === 'voucher-status')).toHaveLength(2);

    const again = await requestVoucher(p);
    expect(again.status).toBe(403);
    expect(again.body.toString()).toMatch(/revoked/);
    const cert = await enroll(p);
    expect(cert.status).toBe(403);
    expect(await reg.store.listCertificates(p.serial)).toHaveLength(0);
  });

  it("a same-serial stranger's reports are logged as events and change nothing; its voucher-request is a clone", async () => {
    const p = fx.pledges[1]!;
    expect((await requestVoucher(p)).status).toBe(200);
    const before = await reg.store.getPledge(p.serial);
    const stranger = await sameSerialStranger(p.serial);

    expect((await report(stranger, 'voucher_status', false)).status).toBe(200);
    expect((await report(stranger, 'enrollstatus', false)).status).toBe(200);
    const after = await reg.store.getPledge(p.serial);
    expect(after?.state).toBe('voucher-issued');
    expect(after?.idevidFingerprint).toBe(before?.idevidFingerprint);
    expect(after?.voucherStatus).toBeUndefined(); // the genuine device's report slot is not the stranger's to fill
    const events = await reg.store.pledgeEvents(p.serial);
    expect(events.filter((e) => e.detail?.['authenticated'] === false)).toHaveLength(2);

    const calls = masa.calls;
    const clone = await requestVoucher(stranger);
    expect(clone.status).toBe(409);
    expect(masa.calls).toBe(calls);
    expect((await enroll(stranger)).status).toBe(403);
    // The genuine device is not locked out.
    const ok = await enroll(p);
    expect(ok.status).toBe(200);

    // Its LDevID, once revoked, no longer speaks for it either.
    const ldevid = { serial: p.serial, signer: p.signer, keyPem: ok.keyPem, certPem: certificateToPem(ok.ldevid!) };
    expect((await report(ldevid, 'enrollstatus', true)).status).toBe(200);
    expect((await reg.store.getPledge(p.serial))?.enrollStatus).toMatchObject({ status: true, authenticated: true });
    const revoke = await request(`${reg.adminUrl}/admin/certificates/${ok.ldevid!.serialNumber}/revoke`, {
      method: 'POST', headers: { authorization: `Bearer ${fx.adminToken}`, 'content-type': 'application/json' }, body: '{"reason":"keyCompromise"}' });
    expect(revoke.status, revoke.body.toString()).toBe(200);
    const stateBefore = (await reg.store.getPledge(p.serial))?.state;
    expect((await report(ldevid, 'enrollstatus', false)).status).toBe(200);
    const rec = await reg.store.getPledge(p.serial);
    expect(rec?.state).toBe(stateBefore);
    expect(rec?.enrollStatus).toMatchObject({ status: true, authenticated: true });
  });

  it("the genuine device's own failure report does not free its serial for another IDevID", async () => {
    const p = fx.pledges[2]!;
    expect((await requestVoucher(p)).status).toBe(200);
    expect((await report(p, 'voucher_status', false)).status).toBe(200);
    expect((await reg.store.getPledge(p.serial))?.state).toBe('failed'); // its own report still counts

    const stranger = await sameSerialStranger(p.serial);
    const calls = masa.calls;
    const clone = await requestVoucher(stranger);
    expect(clone.status).toBe(409);
    expect(masa.calls).toBe(calls);
    expect((await enroll(stranger)).status).toBe(403);
    expect(await reg.store.listCertificates(p.serial)).toHaveLength(0);
  });
});

/**
 * EST over real HTTPS with a real Redis store: independent clients (curl, openssl req) for
 * cacerts / csrattrs / simpleenroll, re-enrollment with the LDevID, revocation, the CRL (read
 * with `openssl crl`), and the enrollment refusals.
 */
import { execFile, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBase64Body } from '@brski/shared/est/base64-body';
import { decodeCertsOnly } from '@brski/shared/est/certs-only';
import { decodeCsrAttrs } from '@brski/shared/est/csrattrs';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { createCsr, generateKeyPair } from '@brski/shared/pki/index';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { startRedis } from '../../test/helpers/redis.ts';
import { createRegistrar, type Registrar } from '../src/server.ts';
import { makeFixture, type Fixture, type TestPledge } from './helpers/fixture.ts';
import { makePvr, request } from './helpers/client.ts';
import { startTestMasa, type TestMasa } from './helpers/test-masa.ts';

let fx: Fixture;
let masa: TestMasa;
let reg: Registrar;
let redis: Awaited<ReturnType<typeof startRedis>>;

beforeAll(async () => {
  redis = await startRedis();
  fx = await makeFixture({ devices: 3, overrides: (c) => { c.store = { type: 'redis', url: redis.url, prefix: 'brski:registrar:' }; } });
  masa = await startTestMasa(fx);
  reg = createRegistrar(fx.config);
  await reg.start();
});
afterAll(async () => {
  await reg?.stop();
  await masa?.stop();
  await redis?.stop();
});

// Synchronous tools only for local files; anything talking to the in-process server must not block the event loop.
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
const curl = (p: TestPledge | { certFile: string; keyFile: string }, path: string, extra: string[] = []) => new Promise<string>((resolve, reject) => {
  execFile('curl', ['-sS', '-k', '--cert', p.certFile, '--key', p.keyFile, '-w', '\n%{http_code}', ...extra, `${reg.url}${path}`],
    (err, stdout) => (err ? reject(err) : resolve(stdout)));
});
const split = (out: string) => { const i = out.lastIndexOf('\n'); return { body: out.slice(0, i), status: Number(out.slice(i + 1)) }; };

async function onboard(p: TestPledge): Promise<void> {
  const { bytes } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx.registrarCert });
  const res = await request(`${reg.url}/.well-known/brski/requestvoucher`, {
    method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE.cms }, body: bytes, key: p.keyPem, cert: p.certPem,
  });
  expect(res.status, res.body.toString()).toBe(200);
}

function opensslCsr(name: string, subj = `/CN=${name}`): { csrDer: Buffer; keyFile: string } {
  const keyFile = join(fx.dir, `${name}.key`);
  const csrDer = sh('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile,
    '-subj', subj, '-outform', 'DER']);
  return { csrDer, keyFile };
}

async function enroll(p: { certFile: string; keyFile: string }, path: 'simpleenroll' | 'simplereenroll', csrDer: Uint8Array) {
  const b64 = Buffer.from(csrDer).toString('base64').replace(/.{1,60}/g, '$&\r\n'); // RFC 8951: line breaks tolerated
  return split(await curl(p, `/.well-known/est/${path}`, ['-H', 'Content-Type: application/pkcs10', '--data-binary', b64]));
}

describe('EST with independent clients', () => {
  let ldevidFile = '';
  let ldevidKey = '';
  let ldevidSerial = '';

  it('serves cacerts and csrattrs to curl', async () => {
    const p = fx.pledges[0]!;
    const ca = split(await curl(p, '/.well-known/est/cacerts'));
    expect(ca.status).toBe(200);
    const certs = decodeCertsOnly(decodeBase64Body(ca.body));
    expect(certs.map((c) => c.fingerprint256)).toContain(fx.domainCa.fingerprint256);
    const attrs = split(await curl(p, '/.well-known/est/csrattrs'));
    expect(attrs.status).toBe(200);
    expect(decodeCsrAttrs(decodeBase64Body(attrs.body)).some((i) => i.kind === 'attribute' && i.type === '1.2.840.10045.2.1')).toBe(true);
  });

  it('refuses simpleenroll without a voucher and stores nothing', async () => {
    const p = fx.pledges[1]!;
    const { csrDer } = opensslCsr('no-voucher');
    const r = await enroll(p, 'simpleenroll', csrDer);
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/no-voucher/);
    expect(await reg.store.listCertificates(p.serial)).toEqual([]);
  });

  it('issues an LDevID for an openssl-made CSR that openssl verifies', async () => {
    const p = fx.pledges[0]!;
    await onboard(p);
    const { csrDer, keyFile } = opensslCsr('ldevid1');
    const r = await enroll(p, 'simpleenroll', csrDer);
    expect(r.status, r.body).toBe(200);
    const [cert] = decodeCertsOnly(decodeBase64Body(r.body));
    ldevidFile = join(fx.dir, 'ldevid1.pem');
    writeFileSync(ldevidFile, cert!.toString());
    ldevidKey = keyFile;
    ldevidSerial = cert!.serialNumber;
    expect(sh('openssl', ['verify', '-CAfile', join(fx.dir, 'domain-ca.pem'), ldevidFile]).toString()).toMatch(/: OK/);
    expect(cert!.subject).toContain(p.serial);
    const rec = await reg.store.getCertificate(ldevidSerial);
    expect(rec).toMatchObject({ pledgeSerial: p.serial });
    expect((await reg.store.getPledge(p.serial))).toMatchObject({ state: 'enrolled', currentCertificate: ldevidSerial });
  });

  it('refuses a CSR reusing the IDevID key and one with a broken signature', async () => {
    const p = fx.pledges[0]!;
    const before = (await reg.store.listCertificates(p.serial)).length;
    const reuse = await createCsr([['CN', 'reuse']], p.signer);
    const r1 = await enroll(p, 'simpleenroll', reuse);
    expect(r1.status).toBe(400);
    expect(r1.body).toMatch(/bad-csr.*IDevID key/);
    const good = await createCsr([['CN', 'pop']], new SoftwareSigner(generateKeyPair('P-256').privateKey));
    const broken = new Uint8Array(good);
    broken[broken.length - 5] = broken[broken.length - 5]! ^ 0x01; // inside the signature: proof of possession fails
    const r2 = await enroll(p, 'simpleenroll', broken);
    expect(r2.status).toBe(400);
    expect(r2.body).toMatch(/bad-csr|malformed/);
    const junk = split(await curl(p, '/.well-known/est/simpleenroll', ['-H', 'Content-Type: application/pkcs10', '--data-binary', '!!not base64!!']));
    expect(junk.status).toBe(400);
    expect((await reg.store.listCertificates(p.serial)).length).toBe(before);
  });

  it('re-enrolls with the LDevID, supersedes the old one, refuses the superseded and the revoked', async () => {
    const p = fx.pledges[0]!;
    // RFC 7030 §4.2.2: the renewal CSR repeats the current subject (reenroll-identity.test.ts covers the refusals).
    const { csrDer, keyFile } = opensslCsr('ldevid2', `/CN=${p.serial}/serialNumber=${p.serial}`);
    const r = await enroll({ certFile: ldevidFile, keyFile: ldevidKey }, 'simplereenroll', csrDer);
    expect(r.status, r.body).toBe(200);
    const [next] = decodeCertsOnly(decodeBase64Body(r.body));
    const nextFile = join(fx.dir, 'ldevid2.pem');
    writeFileSync(nextFile, next!.toString());
    expect((await reg.store.getCertificate(ldevidSerial))?.supersededBy).toBe(next!.serialNumber);
    expect((await reg.store.getCertificate(next!.serialNumber))?.supersedes).toBe(ldevidSerial);
    expect((await reg.store.getPledge(p.serial))?.currentCertificate).toBe(next!.serialNumber);

    const stale = await enroll({ certFile: ldevidFile, keyFile: ldevidKey }, 'simplereenroll', opensslCsr('ldevid3').csrDer);
    expect(stale.status).toBe(403);

    // Revoke the current LDevID through the admin API.
    const rv = await request(`${reg.adminUrl}/admin/certificates/${next!.serialNumber}/revoke`, {
      method: 'POST', headers: { authorization: `Bearer ${fx.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ reason: 'keyCompromise' }),
    });
    expect(rv.status, rv.body.toString()).toBe(200);
    const refused = await enroll({ certFile: nextFile, keyFile }, 'simplereenroll', opensslCsr('ldevid4').csrDer);
    expect(refused.status).toBe(403);
    expect(refused.body).toMatch(/revoked/);

    const crl = await request(`${reg.url}/.well-known/est/crl`);
    expect(crl.status).toBe(200);
    const crlFile = join(fx.dir, 'domain.crl');
    writeFileSync(crlFile, crl.body);
    const text = sh('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text']).toString();
    expect(text.replace(/[\s:]/g, '').toUpperCase()).toContain(`SerialNumber${next!.serialNumber}`.toUpperCase());
    expect(text).toMatch(/Key Compromise/);
    sh('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-CAfile', join(fx.dir, 'domain-ca.pem')]); // signature verifies
  });

  it('revokes a device: all certificates on the CRL and no new voucher', async () => {
    const p = fx.pledges[2]!;
    await onboard(p);
    const r = await enroll(p, 'simpleenroll', opensslCsr('dev-rev').csrDer);
    expect(r.status).toBe(200);
    const rv = await request(`${reg.adminUrl}/admin/pledges/${p.serial}/revoke`, {
      method: 'POST', headers: { authorization: `Bearer ${fx.adminToken}` },
    });
    expect(rv.status).toBe(200);
    expect(JSON.parse(rv.body.toString()).revokedCertificates).toHaveLength(1);
    const { bytes } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx.registrarCert });
    const again = await request(`${reg.url}/.well-known/brski/requestvoucher`, {
      method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE.cms }, body: bytes, key: p.keyPem, cert: p.certPem,
    });
    expect(again.status).toBe(403);
    expect((await enroll(p, 'simpleenroll', opensslCsr('dev-rev2').csrDer)).status).toBe(403);
  });
});

/**
 * Domain CA identity rules: the CRL distribution point in issued LDevIDs (read back with
 * `openssl x509 -text`), and simplereenroll (RFC 7030 §4.2.2) — a CSR repeating the current
 * identity (or leaving it empty) is renewed with exactly that identity, a CSR asking for another
 * subject / SAN / ChangeSubjectName is refused with bad-csr and nothing is recorded. One case
 * runs over HTTPS with an openssl-made CSR.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BrskiError } from '@brski/shared/errors';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { decodeBase64Body } from '@brski/shared/est/base64-body';
import { decodeCertsOnly } from '@brski/shared/est/certs-only';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { createCsr, generateKeyPair, signAndAssemble } from '@brski/shared/pki/index';
import { derOid, derSequence, derTlv, spkiOfKey } from '@brski/shared/pki/der';
import { encodeName, type DistinguishedName } from '@brski/shared/pki/extensions';
import { certificateInfo } from '@brski/shared/pki/identity';
import { OID } from '@brski/shared/pki/oids';
import { DomainCa, type LdevidProfileConfig } from '../src/ca/domain-ca.ts';
import { loadMaterial, openMaterialKeys, type RegistrarMaterial } from '../src/material.ts';
import { MemoryRegistrarStore } from '../src/store/memory.ts';
import { createRegistrar, type Registrar } from '../src/server.ts';
import { makeFixture, type Fixture } from './helpers/fixture.ts';
import { makePvr, request } from './helpers/client.ts';
import { startTestMasa, type TestMasa } from './helpers/test-masa.ts';

const CRL_URL = 'http://crl.example.net/domain.crl';
let fx: Fixture;
let material: RegistrarMaterial;

beforeAll(async () => {
  fx = await makeFixture({ devices: 2 });
  material = loadMaterial(fx.config);
  await openMaterialKeys(material);
});

const profile: LdevidProfileConfig = { lifetimeDays: 30, subjectCn: '{serial}', subjectSerialNumber: true, sanDns: '{serial}.devices.example', keyCurve: 'P-256' };

function caWith(store: MemoryRegistrarStore, o: { profile?: Partial<LdevidProfileConfig>; crlDistributionUrl?: string } = {}): DomainCa {
  return new DomainCa({
    signer: material.caSigner, certificate: material.caCertificate, caCertificates: material.caCertificates, store,
    profile: { ...profile, ...o.profile }, crlLifetimeHours: 24, ...(o.crlDistributionUrl ? { crlDistributionUrl: o.crlDistributionUrl } : {}),
  });
}

const newSigner = () => new SoftwareSigner(generateKeyPair('P-256').privateKey);
const opensslText = (cert: X509Certificate): string => {
  const file = join(fx.dir, `cert-${cert.serialNumber}.pem`);
  writeFileSync(file, cert.toString());
  return execFileSync('openssl', ['x509', '-in', file, '-noout', '-text']).toString();
};

/** Enrolls a first LDevID for pledge 0 and returns it. */
async function firstLdevid(ca: DomainCa): Promise<X509Certificate> {
  const p = fx.pledges[0]!;
  return ca.enroll(await createCsr([['CN', 'ignored']], newSigner()), p.serial, p.cert);
}

describe('CRL distribution point', () => {
  it('is in every LDevID (enroll and reenroll) when configured, as openssl reads it', async () => {
    const ca = caWith(new MemoryRegistrarStore(), { crlDistributionUrl: CRL_URL });
    const cert = await firstLdevid(ca);
    const text = opensslText(cert);
    expect(text).toMatch(/X509v3 CRL Distribution Points:\s*\n\s*Full Name:\s*\n\s*URI:http:\/\/crl\.example\.net\/domain\.crl/);
    expect(certificateInfo(cert).extensions.get('2.5.29.31')?.critical).toBe(false);
    execFileSync('openssl', ['verify', '-CAfile', join(fx.dir, 'domain-ca.pem'), join(fx.dir, `cert-${cert.serialNumber}.pem`)]);
    const info = certificateInfo(cert);
    const renewed = await ca.reenroll(await createCsr(info.subject, newSigner()), cert);
    expect(opensslText(renewed)).toContain(`URI:${CRL_URL}`);
  });

  it('is absent without crl.distributionUrl', async () => {
    const cert = await firstLdevid(caWith(new MemoryRegistrarStore()));
    expect(opensslText(cert)).not.toMatch(/CRL Distribution Points/);
  });

  it('refuses a URL that cannot be an IA5String URI', () => {
    expect(() => caWith(new MemoryRegistrarStore(), { crlDistributionUrl: 'http://crl.example/a b' })).toThrow(/printable ASCII/);
  });
});

describe('simplereenroll identity (RFC 7030 §4.2.2)', () => {
  it('renews a CSR repeating subject and SAN with exactly the current identity', async () => {
    const ca = caWith(new MemoryRegistrarStore());
    const cur = await firstLdevid(ca);
    const info = certificateInfo(cur);
    const csr = await createCsr(info.subject, newSigner(), { subjectAltName: { dns: [`${fx.pledges[0]!.serial.toLowerCase()}.devices.example`] } });
    const next = await ca.reenroll(csr, cur);
    const ni = certificateInfo(next);
    expect(Buffer.from(ni.subjectDer).equals(Buffer.from(info.subjectDer))).toBe(true);
    expect(Buffer.from(ni.extensions.get(OID.subjectAltName)!.value).equals(Buffer.from(info.extensions.get(OID.subjectAltName)!.value))).toBe(true);
  });

  it('renews a CSR with an empty subject and no SAN (the CA sets the identity)', async () => {
    const ca = caWith(new MemoryRegistrarStore());
    const cur = await firstLdevid(ca);
    const keyFile = join(fx.dir, 'empty-subject.key');
    const csr = execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile,
      '-subj', '/', '-outform', 'DER'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const next = await ca.reenroll(new Uint8Array(csr), cur);
    expect(next.subject).toBe(cur.subject);
    expect(next.subjectAltName).toBe(cur.subjectAltName);
  });

  it('keeps the current identity when the profile has changed since issuance', async () => {
    const store = new MemoryRegistrarStore();
    const cur = await firstLdevid(caWith(store));
    const changed = caWith(store, { profile: { subjectCn: 'device {serial}', subjectSerialNumber: false, sanDns: 'x-{serial}.other.example' } });
    const next = await changed.reenroll(await createCsr(certificateInfo(cur).subject, newSigner()), cur);
    expect(next.subject).toBe(cur.subject);
    expect(next.subjectAltName).toBe(cur.subjectAltName);
  });

  type Make = (cur: X509Certificate) => Promise<Uint8Array>;
  const refusals: Array<[string, Make, RegExp]> = ([
    ['another CN', async (_cur: X509Certificate) => createCsr([['CN', 'someone-else'], ['serialNumber', fx.pledges[0]!.serial]], newSigner()), /CSR subject "CN=someone-else.*differs from the current LDevID subject/],
    ['another device serial', async (_cur: X509Certificate) => createCsr([['CN', fx.pledges[0]!.serial], ['serialNumber', fx.pledges[1]!.serial]], newSigner()), /subject .*differs/],
    ['the same attributes in another order', async (cur: X509Certificate) => createCsr([...certificateInfo(cur).subject].reverse() as DistinguishedName, newSigner()), /subject .*differs/],
    ['another SAN', async (cur: X509Certificate) => createCsr(certificateInfo(cur).subject, newSigner(), { subjectAltName: { dns: ['evil.example'] } }), /subjectAltName differs/],
    ['an extra SAN name', async (cur: X509Certificate) => createCsr(certificateInfo(cur).subject, newSigner(), {
      subjectAltName: { dns: [`${fx.pledges[0]!.serial.toLowerCase()}.devices.example`], uri: ['https://evil.example'] } }), /subjectAltName differs/],
    ['ChangeSubjectName', async (cur: X509Certificate) => csrWithAttribute(certificateInfo(cur).subject, '1.3.6.1.5.5.7.7.36'), /ChangeSubjectName is not supported/],
  ] satisfies Array<[string, Make, RegExp]>);

  it.each(refusals)('refuses a CSR asking for %s (bad-csr) and records nothing', async (_name, make, re) => {
    const store = new MemoryRegistrarStore();
    const ca = caWith(store);
    const cur = await firstLdevid(ca);
    const err = await ca.reenroll(await make(cur), cur).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrskiError);
    expect((err as BrskiError).code).toBe('bad-csr');
    expect((err as BrskiError).httpStatus).toBe(400);
    expect((err as Error).message).toMatch(re);
    expect(await store.listCertificates(fx.pledges[0]!.serial)).toHaveLength(1);
    expect((await store.getCertificate(cur.serialNumber))?.supersededBy).toBeUndefined();
  });

  it('refuses a SAN in the CSR when the current LDevID has none', async () => {
    const ca = caWith(new MemoryRegistrarStore(), { profile: { sanDns: undefined } });
    const cur = await firstLdevid(ca);
    const csr = await createCsr(certificateInfo(cur).subject, newSigner(), { subjectAltName: { dns: ['a.example'] } });
    await expect(ca.reenroll(csr, cur)).rejects.toMatchObject({ code: 'bad-csr', message: expect.stringMatching(/current LDevID has none/) });
  });
});

/** A CSR with an extra (empty-valued) attribute, for attributes createCsr has no option for. */
async function csrWithAttribute(subject: DistinguishedName, attrOid: string): Promise<Uint8Array> {
  const signer = newSigner();
  const info = derSequence(Uint8Array.of(0x02, 0x01, 0x00), encodeName(subject), spkiOfKey(signer.publicKey),
    derTlv(0xa0, derSequence(derOid(attrOid), derTlv(0x31, derSequence()))));
  return signAndAssemble(info, signer);
}

describe('simplereenroll identity over HTTPS', () => {
  let masa: TestMasa;
  let reg: Registrar;
  beforeAll(async () => {
    masa = await startTestMasa(fx);
    reg = createRegistrar({ ...fx.config, auditPolicy: { ...fx.config.auditPolicy, mode: 'off' } });
    await reg.start();
  });
  afterAll(async () => {
    await reg?.stop();
    await masa?.stop();
  });

  it('answers 400 bad-csr with the reason for an openssl CSR naming another subject', async () => {
    const p = fx.pledges[1]!;
    const { bytes } = await makePvr('jws', p.signer, p.serial, { registrarCert: fx.registrarCert });
    const v = await request(`${reg.url}/.well-known/brski/requestvoucher`, {
      method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE.jws }, body: bytes, key: p.keyPem, cert: p.certPem,
    });
    expect(v.status, v.body.toString()).toBe(200);
    const ldevidKey = generateKeyPair('P-256').privateKey;
    const e = await request(`${reg.url}/.well-known/est/simpleenroll`, {
      method: 'POST', headers: { 'content-type': 'application/pkcs10' }, key: p.keyPem, cert: p.certPem,
      body: Buffer.from(await createCsr([['CN', 'x']], new SoftwareSigner(ldevidKey))).toString('base64'),
    });
    expect(e.status, e.body.toString()).toBe(200);
    const [ldevid] = decodeCertsOnly(decodeBase64Body(e.body));
    const keyPem = ldevidKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    const asLdevid = (csr: Uint8Array) => request(`${reg.url}/.well-known/est/simplereenroll`, {
      method: 'POST', headers: { 'content-type': 'application/pkcs10' }, key: keyPem, cert: ldevid!.toString(), body: Buffer.from(csr).toString('base64'),
    });
    const keyFile = join(fx.dir, 'https-reenroll.key');
    const csrFor = (subj: string) => new Uint8Array(execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', keyFile, '-subj', subj, '-outform', 'DER'], { stdio: ['pipe', 'pipe', 'pipe'] }));
    const bad = await asLdevid(csrFor('/CN=intruder'));
    expect(bad.status).toBe(400);
    expect(bad.body.toString()).toMatch(/^bad-csr: simplereenroll: CSR subject "CN=intruder" differs from the current LDevID subject/);
    expect(await reg.store.listCertificates(p.serial)).toHaveLength(1);
    const good = await asLdevid(csrFor(`/CN=${p.serial}/serialNumber=${p.serial}`));
    expect(good.status, good.body.toString()).toBe(200);
    expect(decodeCertsOnly(decodeBase64Body(good.body))[0]!.subject).toBe(ldevid!.subject);
  });
});

/**
 * The HSM keys doing real work: a factory CA (P-384) and a MASA voucher key (P-256) and a domain
 * CA (P-256) all generated inside a fresh SoftHSM2 token, then used through the shared PKI and
 * envelope code. Results are checked with the shared verifiers and independently with openssl.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync, type X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSigner } from '../../src/crypto/key-loader.ts';
import type { Pkcs11Signer } from '../../src/crypto/pkcs11/pkcs11-signer.ts';
import { signEnvelope, verifyEnvelope } from '../../src/envelope/index.ts';
import type { VoucherFormat } from '../../src/media.ts';
import { idevidProfile, intermediateCaProfile, issueCertificate, ldevidProfile, masaSignerProfile, rootCaProfile } from '../../src/pki/certificate.ts';
import { createCrl, parseCrl, verifyCrlSignature, isRevokedIn } from '../../src/pki/crl.ts';
import { certificateToPem, derToPem } from '../../src/pki/keys.ts';
import { decodeVoucherCbor, encodeVoucherCbor } from '../../src/voucher/cbor.ts';
import { decodeVoucherJson, encodeVoucherJson } from '../../src/voucher/json.ts';
import { HAVE_PKCS11_TOOL, USER_PIN, createSoftHsm, softHsmMissingReason, type SoftHsm } from './softhsm.ts';

const skip = softHsmMissingReason();

function openssl(args: string[]): { ok: boolean; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

describe.skipIf(skip !== undefined)('HSM keys through the shared PKI and envelope code (SoftHSM2)', () => {
  let hsm: SoftHsm;
  let dir: string;
  let factoryRoot: X509Certificate; let factoryRootPem: string;
  let idevidCa: X509Certificate;
  let masaCert: X509Certificate;
  let domainCa: X509Certificate; let domainCaPem: string;
  let idevidCaSigner: Pkcs11Signer;
  let masaSigner: Pkcs11Signer;
  let domainSigner: Pkcs11Signer;

  const ref = (uri: string) => ({ pkcs11Uri: uri, module: hsm.modulePath, pinFile: hsm.pinFile });
  const pem = (name: string, text: string): string => { const p = join(dir, name); writeFileSync(p, text); return p; };

  beforeAll(async () => {
    hsm = createSoftHsm();
    dir = hsm.dir;
    hsm.token('factory');
    hsm.token('registrar');
    const rootKey = hsm.keygen('factory', 'factory-root', 'P-384');
    const caKey = hsm.keygen('factory', 'idevid-ca', 'P-384');
    const masaKey = hsm.keygen('factory', 'masa-voucher', 'P-256');
    const domainKey = hsm.keygen('registrar', 'domain-ca', 'P-256');

    // Factory root, self-signed inside the HSM; IDevID CA and MASA signer issued by it.
    const rootSigner = (await loadSigner(ref(rootKey.uri))) as Pkcs11Signer;
    factoryRoot = await issueCertificate(rootCaProfile({ subject: [['CN', 'HSM Factory Root']], publicKey: rootSigner.publicKey }), { signer: rootSigner });
    factoryRootPem = pem('factory-root.pem', certificateToPem(factoryRoot));
    const caSigner = (await loadSigner(ref(caKey.uri))) as Pkcs11Signer;
    idevidCa = await issueCertificate(intermediateCaProfile({ subject: [['CN', 'HSM IDevID CA']], publicKey: caSigner.publicKey }),
      { signer: rootSigner, certificate: factoryRoot });
    idevidCaSigner = caSigner.withCertificates([idevidCa, factoryRoot]);
    const bareMasa = (await loadSigner(ref(masaKey.uri))) as Pkcs11Signer;
    masaCert = await issueCertificate(masaSignerProfile({ subject: [['CN', 'HSM MASA voucher signer']], publicKey: bareMasa.publicKey }),
      { signer: rootSigner, certificate: factoryRoot });
    // The loader with certificate files, as a service would start.
    masaSigner = (await loadSigner(ref(masaKey.uri), [pem('masa.pem', certificateToPem(masaCert))])) as Pkcs11Signer;

    const bareDomain = (await loadSigner(ref(domainKey.uri))) as Pkcs11Signer;
    domainCa = await issueCertificate(rootCaProfile({ subject: [['CN', 'HSM Domain CA']], publicKey: bareDomain.publicKey }), { signer: bareDomain });
    domainCaPem = pem('domain-ca.pem', certificateToPem(domainCa));
    domainSigner = bareDomain.withCertificates([domainCa]);
  });
  afterAll(() => hsm?.cleanup());

  it('factory root and IDevID CA (HSM-signed) verify with openssl', () => {
    const r = openssl(['verify', '-CAfile', factoryRootPem, pem('idevid-ca.pem', certificateToPem(idevidCa))]);
    expect(r.ok, r.out).toBe(true);
    expect(factoryRoot.verify(factoryRoot.publicKey)).toBe(true);
  });

  it('issues an IDevID with the HSM IDevID CA; openssl verifies the chain, and a wrong anchor fails', () => {
    return (async () => {
      const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const idevid = await issueCertificate(idevidProfile('SN-HSM-0001', 'https://masa.example:9443', device.publicKey), {
        signer: idevidCaSigner, certificate: idevidCa,
      });
      const leaf = pem('idevid.pem', certificateToPem(idevid));
      const chain = pem('idevid-ca-untrusted.pem', certificateToPem(idevidCa));
      const r = openssl(['verify', '-CAfile', factoryRootPem, '-untrusted', chain, leaf]);
      expect(r.ok, r.out).toBe(true);
      expect(openssl(['verify', '-CAfile', domainCaPem, '-untrusted', chain, leaf]).ok).toBe(false);
      expect(openssl(['x509', '-in', leaf, '-noout', '-subject']).out).toMatch(/serialNumber\s*=\s*SN-HSM-0001/);
    })();
  });

  const voucher = {
    assertion: 'logged' as const, serialNumber: 'SN-HSM-0001', createdOn: '2026-01-01T00:00:00Z',
    nonce: Uint8Array.from({ length: 16 }, (_, i) => i), pinnedDomainCert: new Uint8Array(0),
  };

  for (const format of ['cms', 'jws', 'cose'] as VoucherFormat[]) {
    it(`signs a ${format.toUpperCase()} voucher with the HSM MASA key; the shared verifier accepts it against the factory root only`, async () => {
      const data = { ...voucher, pinnedDomainCert: new Uint8Array(domainCa.raw) };
      const payload = format === 'cose' ? encodeVoucherCbor('voucher', data) : encodeVoucherJson('voucher', data);
      const signed = await signEnvelope(format, payload, masaSigner, format === 'cose' ? { unprotectedX5bag: [masaCert] } : {});
      const v = await verifyEnvelope(format, signed, { anchors: [factoryRoot], ...(format === 'cose' ? { signerCertificate: masaCert } : {}) });
      expect(v.signer.fingerprint256).toBe(masaCert.fingerprint256);
      const decoded = format === 'cose' ? decodeVoucherCbor(v.payload, { kind: 'voucher', strict: true }) : decodeVoucherJson(v.payload, { kind: 'voucher', strict: true });
      expect(decoded.data.serialNumber).toBe('SN-HSM-0001');
      await expect(verifyEnvelope(format, signed, { anchors: [domainCa], ...(format === 'cose' ? { signerCertificate: masaCert } : {}) })).rejects.toThrow();
      if (format === 'cms') {
        const file = join(dir, 'voucher.cms');
        writeFileSync(file, signed);
        const r = openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', file, '-CAfile', factoryRootPem, '-purpose', 'any']);
        expect(r.ok, r.out).toBe(true);
        expect(r.out).toContain('"serial-number":"SN-HSM-0001"');
      }
    });
  }

  it('domain CA in the HSM issues an LDevID and a CRL revoking it; openssl checks both', async () => {
    const device = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const ldevid = await issueCertificate(ldevidProfile({ serialNumber: 'SN-HSM-0001', publicKey: device.publicKey }), { signer: domainSigner, certificate: domainCa });
    const leaf = pem('ldevid.pem', certificateToPem(ldevid));
    const ok = openssl(['verify', '-CAfile', domainCaPem, leaf]);
    expect(ok.ok, ok.out).toBe(true);

    const now = Date.now();
    const crlDer = await createCrl({
      issuer: domainSigner, issuerCertificate: domainCa, crlNumber: 1, thisUpdate: new Date(now - 60_000), nextUpdate: new Date(now + 86_400_000),
      revoked: [{ serialNumber: ldevid.serialNumber, revokedAt: new Date(now - 30_000), reason: 'keyCompromise' }],
    });
    const parsed = parseCrl(crlDer);
    expect(verifyCrlSignature(parsed, domainCa)).toBe(true);
    expect(isRevokedIn(parsed, ldevid)).toBe(true);
    const crlPem = pem('domain.crl', derToPem(crlDer, 'X509 CRL'));
    const sig = openssl(['crl', '-in', crlPem, '-CAfile', domainCaPem, '-noout']);
    expect(sig.ok && /verify OK/.test(sig.out), sig.out).toBe(true);
    const revoked = openssl(['verify', '-crl_check', '-CAfile', domainCaPem, '-CRLfile', crlPem, leaf]);
    expect(revoked.ok).toBe(false);
    expect(revoked.out).toMatch(/certificate revoked/);
  });

  it.skipIf(!HAVE_PKCS11_TOOL)('the private keys used above are all in the token, non-extractable', () => {
    const list = execFileSync('pkcs11-tool', ['--module', hsm.modulePath, '--token-label', 'factory', '--login', '--pin', USER_PIN,
      '--list-objects', '--type', 'privkey'], { env: hsm.env }).toString();
    for (const label of ['factory-root', 'idevid-ca', 'masa-voucher']) {
      const entry = list.split(/Private Key Object/).find((e) => new RegExp(`label:\\s+${label}\\b`).test(e));
      expect(entry, label).toMatch(/never extractable/);
    }
  });
});

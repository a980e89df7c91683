/**
 * CMS specifics, cross-checked with the openssl CLI in both directions: our output must pass
 * `openssl cms -verify`, and openssl-made variants (id-data, no attributes, two signers,
 * SKI signer identifiers, foreign eContentType, detached) must get the documented answer.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectCms, signCms, verifyCms, ID_CT_ANIMA_JSON_VOUCHER } from '../../src/envelope/cms.ts';
import { BrskiError, type ErrorCode } from '../../src/errors.ts';
import { createTestPki, runOpenssl, type Curve, type TestPki } from './fixtures.ts';
import { samplePayload } from './samples.ts';

async function code(p: Promise<unknown>): Promise<ErrorCode | 'ok'> {
  try { await p; return 'ok'; } catch (e) { if (e instanceof BrskiError) return e.code; throw e; }
}

describe('CMS', () => {
  let pki: TestPki;
  let pki384: TestPki;
  const payload = samplePayload('cms', 'voucher');
  beforeAll(() => {
    pki = createTestPki('P-256'); pki384 = createTestPki('P-384');
    writeFileSync(join(pki.dir, 'payload.json'), payload);
  });
  afterAll(() => { pki.cleanup(); pki384.cleanup(); });

  /** openssl cms -sign with extra flags; returns DER. */
  function opensslSign(flags: string[], signers: TestPki['leaf'][] = [pki.leaf]): Uint8Array {
    const out = join(pki.dir, `os-${Math.random().toString(36).slice(2)}.der`);
    const signerArgs = signers.flatMap((s) => ['-signer', s.certPath, '-inkey', s.keyPath]);
    const r = runOpenssl(['cms', '-sign', '-binary', '-nodetach', '-outform', 'DER', '-in', join(pki.dir, 'payload.json'),
      ...signerArgs, '-certfile', pki.intermediate.certPath, '-md', 'sha256', ...flags, '-out', out]);
    expect(r.ok, r.output).toBe(true);
    return new Uint8Array(readFileSync(out));
  }

  for (const [curve, get] of [['P-256', () => pki], ['P-384', () => pki384]] as Array<[Curve, () => TestPki]>) {
    it(`openssl cms -verify accepts our ${curve} output and returns the payload`, async () => {
      const p = get();
      const der = await signCms(payload, p.signer);
      const file = join(p.dir, `ours-${curve}.der`);
      writeFileSync(file, der);
      const r = runOpenssl(['cms', '-verify', '-binary', '-CAfile', p.root.certPath, '-inform', 'DER', '-in', file, '-purpose', 'any']);
      expect(r.ok, r.output).toBe(true);
      expect(r.output).toBe(Buffer.from(payload).toString());
      // and openssl refuses it against a different root (the check above can fail)
      const wrong = runOpenssl(['cms', '-verify', '-binary', '-CAfile', (curve === 'P-256' ? pki384 : pki).root.certPath,
        '-inform', 'DER', '-in', file, '-purpose', 'any']);
      expect(wrong.ok).toBe(false);
    });
  }

  it('emits the structure the digest requires (v3, anima eContentType, DER attributes, certs = signer chain)', async () => {
    const der = await signCms(payload, pki.signer);
    const ci = new pkijs.ContentInfo({ schema: asn1js.fromBER(der).result });
    const sd = new pkijs.SignedData({ schema: ci.content });
    expect(sd.version).toBe(3);
    expect(sd.encapContentInfo.eContentType).toBe(ID_CT_ANIMA_JSON_VOUCHER);
    expect(sd.encapContentInfo.eContent!.idBlock.isConstructed).toBe(false); // DER: primitive OCTET STRING
    expect(sd.signerInfos).toHaveLength(1);
    const si = sd.signerInfos[0]!;
    expect(si.signatureAlgorithm.algorithmId).toBe('1.2.840.10045.4.3.2');
    expect(si.digestAlgorithm.algorithmId).toBe('2.16.840.1.101.3.4.2.1');
    expect(si.signedAttrs!.attributes.map((a) => a.type).sort()).toEqual(
      ['1.2.840.113549.1.9.3', '1.2.840.113549.1.9.4', '1.2.840.113549.1.9.5']);
    const embedded = inspectCms(der).embedded;
    expect(embedded.map((c) => c.fingerprint256)).toEqual(pki.signer.certificates.map((c) => c.fingerprint256));
    // Full DER round trip: re-encoding the parsed structure gives identical bytes.
    expect(Buffer.from(ci.toSchema().toBER(false)).equals(Buffer.from(der))).toBe(true);
  });

  it('uses SHA-384 / ecdsa-with-SHA384 for a P-384 signer', async () => {
    const der = await signCms(payload, pki384.signer);
    const sd = new pkijs.SignedData({ schema: new pkijs.ContentInfo({ schema: asn1js.fromBER(der).result }).content });
    expect(sd.signerInfos[0]!.signatureAlgorithm.algorithmId).toBe('1.2.840.10045.4.3.3');
    expect(sd.signerInfos[0]!.digestAlgorithm.algorithmId).toBe('2.16.840.1.101.3.4.2.2');
  });

  it('contentType "data" emits id-data; includeCertificates replaces the embedded list; signingTime is reported', async () => {
    const t = new Date('2026-03-04T05:06:07Z');
    const der = await signCms(payload, pki.signer, { contentType: 'data', includeCertificates: [pki.intermediate.cert, pki.root.cert], signingTime: t });
    const v = await verifyCms(der, { anchors: [pki.root.cert] });
    expect(v.warnings.join()).toMatch(/id-data/);
    expect(v.signingTime?.toISOString()).toBe(t.toISOString());
    expect(v.embedded.map((c) => c.subject)).toEqual(['CN=Test Signer', 'CN=Test Intermediate CA', 'CN=Test Root CA']);
    expect(await code(verifyCms(der, { anchors: [pki.root.cert], acceptIdData: false }))).toBe('malformed');
  });

  it('accepts base64 text of the DER (with line breaks), rejects junk text', async () => {
    const der = await signCms(payload, pki.signer);
    const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n');
    const v = await verifyCms(Buffer.from(b64), { anchors: [pki.root.cert] });
    expect(Buffer.from(v.payload).toString()).toBe(Buffer.from(payload).toString());
    expect(await code(verifyCms(Buffer.from('MIIB!!not base64'), { anchors: [pki.root.cert] }))).toBe('malformed');
    expect(await code(verifyCms(Buffer.from('QUJDRA=='), { anchors: [pki.root.cert] }))).toBe('malformed');
  });

  it('verifies openssl output (id-data) and finds the signer by issuerAndSerialNumber and by SKI', async () => {
    for (const flags of [[], ['-keyid']]) {
      const v = await verifyCms(opensslSign(flags), { anchors: [pki.root.cert] });
      expect(v.signer.fingerprint256).toBe(pki.leaf.cert.fingerprint256);
      expect(v.warnings.join()).toMatch(/id-data/);
    }
  });

  it('verifies BER from openssl -stream (indefinite lengths, constructed eContent)', async () => {
    const ber = opensslSign(['-stream']);
    expect(Buffer.from(ber.subarray(0, 4)).toString('hex')).toBe('30800609'); // indefinite-length ContentInfo
    const v = await verifyCms(ber, { anchors: [pki.root.cert] });
    expect(Buffer.from(v.payload).toString()).toBe(Buffer.from(payload).toString());
    expect(await code(verifyCms(ber.subarray(0, ber.length - 2), { anchors: [pki.root.cert] }))).toBe('malformed');
  });

  it('uses opts.signerCertificate when the CMS carries no certificates', async () => {
    const der = opensslSign(['-nocerts']);
    expect(await code(verifyCms(der, { anchors: [pki.root.cert] }))).toBe('bad-signature');
    const v = await verifyCms(der, { anchors: [pki.root.cert], signerCertificate: pki.leaf.cert, extraCertificates: [pki.intermediate.cert] });
    expect(v.signer).toBe(pki.leaf.cert);
  });

  it('rejects SignerInfos without signed attributes (pledge check §12 #9)', async () => {
    await expect(verifyCms(opensslSign(['-noattr']), { anchors: [pki.root.cert] })).rejects.toThrow(/SignedAttributes missing/);
  });

  it('rejects two SignerInfos', async () => {
    const second = pki.issue('second signer', { issuer: pki.intermediate });
    await expect(verifyCms(opensslSign([], [pki.leaf, second]), { anchors: [pki.root.cert] })).rejects.toThrow(/exactly one SignerInfo/);
  });

  it('rejects an eContentType that is neither id-ct-animaJSONVoucher nor id-data', async () => {
    await expect(verifyCms(opensslSign(['-econtent_type', '1.2.3.4.5']), { anchors: [pki.root.cert] })).rejects.toThrow(/unexpected eContentType 1.2.3.4.5/);
    // id-ct-animaJSONVoucher from openssl is accepted without the id-data warning
    const v = await verifyCms(opensslSign(['-econtent_type', ID_CT_ANIMA_JSON_VOUCHER]), { anchors: [pki.root.cert] });
    expect(v.warnings.join()).not.toMatch(/id-data/);
  });

  it('rejects detached content', async () => {
    const out = join(pki.dir, 'detached.der');
    const r = runOpenssl(['cms', '-sign', '-binary', '-outform', 'DER', '-in', join(pki.dir, 'payload.json'),
      '-signer', pki.leaf.certPath, '-inkey', pki.leaf.keyPath, '-out', out]);
    expect(r.ok, r.output).toBe(true);
    expect(await code(verifyCms(readFileSync(out), { anchors: [pki.root.cert] }))).toBe('malformed');
  });

  it('rejects a ContentInfo that is not SignedData, and trailing bytes', async () => {
    const data = new pkijs.ContentInfo({ contentType: '1.2.840.113549.1.7.1', content: new asn1js.OctetString({ valueHex: new Uint8Array(payload).buffer }) });
    expect(await code(verifyCms(new Uint8Array(data.toSchema().toBER(false)), { anchors: [pki.root.cert] }))).toBe('malformed');
    const der = await signCms(payload, pki.signer);
    expect(await code(verifyCms(Buffer.concat([der, Buffer.from([0, 0])]), { anchors: [pki.root.cert] }))).toBe('malformed');
  });

  it('signCms refuses a signer without a certificate', async () => {
    await expect(signCms(payload, { ...pki.signer, algorithm: pki.signer.algorithm, publicKey: pki.signer.publicKey,
      certificates: [], sign: (d: Uint8Array) => pki.signer.sign(d) })).rejects.toThrow(TypeError);
  });
});

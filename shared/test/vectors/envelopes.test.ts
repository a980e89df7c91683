/**
 * Published interop vectors (shared/test/vectors/data, see its README/manifest): every signed
 * artifact the manifest marks "verifies" must verify with our envelopes at its validation time
 * against its trust anchor; the documented defective ones must be rejected for their reason.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { inspectCose } from '../../src/envelope/cose.ts';
import { verifyEnvelope, type VerifyEnvelopeOptions } from '../../src/envelope/index.ts';
import { verifyJwsSignatures } from '../../src/envelope/jws.ts';
import { BrskiError } from '../../src/errors.ts';
import type { VoucherFormat } from '../../src/media.ts';
import {
  manifest, readVector, readVectorText, vectorCert, vectorCerts, verifyingVectors,
} from '../helpers/vectors.ts';

const at = (iso: string) => new Date(iso);

/** x5c[0] of signature `i` of a JWS vector, for vectors whose CA was never published. */
function x5c0(path: string, i = 0): X509Certificate {
  const obj = JSON.parse(readVectorText(path)) as { signatures: Array<{ protected: string }> };
  const header = JSON.parse(Buffer.from(obj.signatures[i]!.protected, 'base64url').toString()) as { x5c: string[] };
  return new X509Certificate(Buffer.from(header.x5c[0]!, 'base64'));
}

function prmAgentCert(): X509Certificate {
  const rvr = JSON.parse(readVectorText('brski-prm/rvr.payload.json')) as Record<string, { 'agent-sign-cert': string[] }>;
  return new X509Certificate(Buffer.from(Object.values(rvr)[0]!['agent-sign-cert'][0]!, 'base64'));
}

function prmPinnedCa(): X509Certificate {
  const v = JSON.parse(readVectorText('brski-prm/voucher-registrar-countersigned.payload.json')) as Record<string, Record<string, string>>;
  return new X509Certificate(Buffer.from(Object.values(v)[0]!['pinned-domain-cert']!, 'base64'));
}

interface Case { format: VoucherFormat; opts: () => VerifyEnvelopeOptions; signer: string; chainLength: number }

const vendor = () => vectorCert('rfc8995/vendor.crt');
const ownerCa = () => vectorCert('rfc8995/ownerca_secp384r1.crt');

/** One entry per manifest vector with "verifies": true. Anchors per the manifest's trust_anchor. */
const CASES: Record<string, Case> = {
  'rfc8995/vr_00-D0-E5-F2-00-02.der': { format: 'cms', signer: 'serialNumber=00-D0-E5-F2-00-02', chainLength: 2,
    opts: () => ({ anchors: [vendor()], at: at('2021-04-14T00:00:00Z') }) },
  'rfc8995/parboiled_vr_00-D0-E5-F2-00-02.der': { format: 'cms', signer: 'fountain-test.example.com', chainLength: 2,
    opts: () => ({ anchors: [ownerCa()], at: at('2021-04-14T00:00:00Z'), requireEku: '1.3.6.1.5.5.7.3.28' }) },
  'rfc8995/voucher_00-D0-E5-F2-00-02.der': { format: 'cms', signer: 'highway-test.example.com MASA', chainLength: 2,
    opts: () => ({ anchors: [vendor()], at: at('2021-04-14T00:00:00Z') }) },
  'rfc8995/rvr-2020_00-D0-E5-F2-00-02.der': { format: 'cms', signer: 'fountain-test.example.com', chainLength: 2,
    opts: () => ({ anchors: [ownerCa()], at: at('2021-01-01T00:00:00Z') }) },
  'rfc8366bis/vr_00-D0-E5-F2-00-02.der': { format: 'cms', signer: 'serialNumber=00-D0-E5-F2-00-02', chainLength: 2,
    opts: () => ({ anchors: [vendor()], at: at('2022-07-11T00:00:00Z') }) },
  'rfc8366bis/voucher_00-D0-E5-F2-00-02.der': { format: 'cms', signer: 'highway-test.example.com MASA', chainLength: 2,
    opts: () => ({ anchors: [vendor()], at: at('2022-07-11T00:00:00Z') }) },
  'rfc8366bis/voucher-jws-example.json': { format: 'jws', signer: 'highway-test.example.com MASA', chainLength: 2,
    opts: () => ({ anchors: [vendor()], at: at('2022-01-01T00:00:00Z') }) },
  'jws-voucher/pvr.jws.json': { format: 'jws', signer: 'serialNumber=kit-987654321', chainLength: 2,
    opts: () => ({ anchors: [vectorCerts('jws-voucher/pvr-signer.chain.pem')[1]!], at: at('2024-11-30T00:00:00Z') }) },
  'jws-voucher/rvr.jws.json': { format: 'jws', signer: 'Registrar Voucher Request Signing Key', chainLength: 2,
    opts: () => ({ anchors: [vectorCerts('jws-voucher/rvr-signer.chain.pem')[1]!], at: at('2024-11-30T00:00:00Z'), requireEku: '1.3.6.1.5.5.7.3.28' }) },
  'jws-voucher/voucher.jws.json': { format: 'jws', signer: 'Manufacturer Voucher Signing Key', chainLength: 2,
    opts: () => ({ anchors: [vectorCerts('jws-voucher/voucher-signer.chain.pem')[1]!], at: at('2024-11-30T00:00:00Z') }) },
  // PRM: CAs not published → signature-only verification with x5c[0] as the anchor.
  'brski-prm/pvr.jws.json': { format: 'jws', signer: 'JingJingDevice', chainLength: 1,
    opts: () => ({ anchors: [x5c0('brski-prm/pvr.jws.json')], at: at('2024-06-24T09:01:25Z') }) },
  'brski-prm/rvr.jws.json': { format: 'jws', signer: 'Registrar Voucher Request Signing Key', chainLength: 1,
    opts: () => ({ anchors: [x5c0('brski-prm/rvr.jws.json')], at: at('2024-06-24T09:01:25Z') }) },
  'brski-prm/voucher.jws.json': { format: 'jws', signer: 'JingJingCorp Voucher Signing Key', chainLength: 1,
    opts: () => ({ anchors: [x5c0('brski-prm/voucher.jws.json')], at: at('2024-06-24T09:01:25Z') }) },
  'brski-prm/voucher-registrar-countersigned.jws.json': { format: 'jws', signer: 'JingJingCorp Voucher Signing Key', chainLength: 1,
    opts: () => ({ anchors: [x5c0('brski-prm/voucher-registrar-countersigned.jws.json')], at: at('2024-06-24T09:01:25Z') }) },
  // agent-signed-data: no x5c, kid = base64(SKI) of the agent cert carried in the RVR.
  'brski-prm/pvr.agent-signed-data.jws.json': { format: 'jws', signer: 'CN=MySitePushModelRegistrarAgent', chainLength: 1,
    opts: () => ({ anchors: [prmAgentCert()], signerCertificate: prmAgentCert(), at: at('2024-06-24T09:01:25Z') }) },
  'cbrski/pvr.cose': { format: 'cose', signer: 'Stok IoT sensor Y-42', chainLength: 2,
    opts: () => ({ anchors: [vectorCert('cbrski/masa_ca.pem')], signerCertificate: vectorCert('cbrski/pledge.pem'), at: at('2022-12-10T00:00:00Z') }) },
  'cbrski/rvr.cose': { format: 'cose', signer: 'Custom-ER Commercial Buildings Registrar', chainLength: 2,
    opts: () => ({ anchors: [inspectCose(readVector('cbrski/rvr.cose')).embedded[1]!], at: at('2022-12-07T00:00:00Z'), requireEku: '1.3.6.1.5.5.7.3.28' }) },
  'cbrski/voucher.cose': { format: 'cose', signer: 'masa.stok.nl', chainLength: 1,
    opts: () => ({ anchors: [vectorCert('cbrski/masa_ca.pem')], signerCertificate: vectorCert('cbrski/masa_ca.pem'), at: at('2022-12-07T00:00:00Z') }) },
};

async function rejection(p: Promise<unknown>): Promise<BrskiError> {
  try { await p; } catch (e) { if (e instanceof BrskiError) return e; throw e; }
  throw new Error('expected a BrskiError');
}

describe('published vectors', () => {
  it('the repository copy matches the manifest hashes', () => {
    for (const e of manifest()) {
      expect([e.path, createHash('sha256').update(readVector(e.path)).digest('hex')]).toEqual([e.path, e.sha256]);
    }
  });

  it('every "verifies: true" vector has a case here', () => {
    expect(verifyingVectors().map((e) => e.path).sort()).toEqual(Object.keys(CASES).sort());
  });

  for (const [path, c] of Object.entries(CASES)) {
    it(`${path} verifies (${c.format})`, async () => {
      const v = await verifyEnvelope(c.format, readVector(path), c.opts());
      expect(v.signer.subject).toContain(c.signer);
      expect(v.chain).toHaveLength(c.chainLength);
      expect(v.payload.length).toBeGreaterThan(10);
      if (c.format === 'cms') expect(v.warnings.join()).toMatch(/id-data/);
      const econtent = path.replace(/\.der$/, '.econtent.json');
      if (c.format === 'cms') expect(Buffer.from(v.payload).equals(Buffer.from(readVector(econtent)))).toBe(true);
      // every one of them is rejected once the signed bytes change
      let tampered = Uint8Array.from(readVector(path));
      if (c.format === 'jws') {
        const obj = JSON.parse(Buffer.from(tampered).toString()) as { signatures: Array<{ signature: string }> };
        const sig = obj.signatures[0]!.signature;
        obj.signatures[0]!.signature = sig.slice(0, 10) + (sig[10] === 'A' ? 'B' : 'A') + sig.slice(11);
        tampered = Buffer.from(JSON.stringify(obj));
      } else {
        tampered[tampered.length - 5]! ^= 0x01; // CMS/COSE: inside the trailing signature
      }
      expect((await rejection(verifyEnvelope(c.format, tampered, c.opts()))).code).toBe('bad-signature');
    });
  }

  it('the RFC 8995 artifacts are rejected when id-data is not tolerated, and when validated today (expired)', async () => {
    const bytes = readVector('rfc8995/voucher_00-D0-E5-F2-00-02.der');
    expect((await rejection(verifyEnvelope('cms', bytes, { anchors: [vendor()], at: at('2021-04-14T00:00:00Z'), acceptIdData: false }))).code).toBe('malformed');
    expect((await rejection(verifyEnvelope('cms', bytes, { anchors: [vendor()], at: at('2030-01-01T00:00:00Z') }))).code).toBe('certificate-expired');
    // the base64 form of the same artifact is accepted
    await verifyEnvelope('cms', readVector('rfc8995/voucher_00-D0-E5-F2-00-02.b64'), { anchors: [vendor()], at: at('2021-04-14T00:00:00Z') });
  });

  it('rfc8366bis voucher vs the same-name RSA vendor certificate → untrusted-chain', async () => {
    const e = await rejection(verifyEnvelope('cms', readVector('rfc8366bis/voucher_00-D0-E5-F2-00-02.der'),
      { anchors: [vectorCert('rfc8366bis/vendor-00-D0-E5-F2-00-02.crt')], at: at('2022-07-11T00:00:00Z') }));
    expect(e.code).toBe('untrusted-chain');
  });

  it('the RFC 8995 RVR signer has no cmcRA-less pass: registrar EKU required and present; MASA cert lacks it', async () => {
    const e = await rejection(verifyEnvelope('cms', readVector('rfc8995/voucher_00-D0-E5-F2-00-02.der'),
      { anchors: [vendor()], at: at('2021-04-14T00:00:00Z'), requireEku: '1.3.6.1.5.5.7.3.28' }));
    expect(e.code).toBe('missing-eku');
  });

  it('historical cBRSKI COSE objects (empty protected header) → missing alg', async () => {
    for (const f of ['vr_00-D0-E5-F2-00-03.vrq', 'parboiled_vr_00-D0-E5-F2-00-03.vrq', 'voucher_00-D0-E5-F2-00-03.vch']) {
      const e = await rejection(verifyEnvelope('cose', readVector(`cbrski/historical/${f}`),
        { anchors: [vectorCert('cbrski/historical/masa_00-D0-E5-F2-00-03.crt')], signerCertificate: vectorCert('cbrski/historical/masa_00-D0-E5-F2-00-03.crt') }));
      expect([f, e.code, e.message]).toEqual([f, 'malformed', expect.stringMatching(/missing alg/)]);
    }
  });

  it('cbrski voucher (no certificates carried) verifies with just the MASA CA as anchor', async () => {
    const v = await verifyEnvelope('cose', readVector('cbrski/voucher.cose'), { anchors: [vectorCert('cbrski/masa_ca.pem')], at: at('2022-12-07T00:00:00Z') });
    expect(v.signer.subject).toContain('masa.stok.nl');
  });

  it('cbrski voucher does not verify with the pledge key; rvr does not chain to the MASA CA', async () => {
    const v = readVector('cbrski/voucher.cose');
    expect((await rejection(verifyEnvelope('cose', v, { anchors: [vectorCert('cbrski/masa_ca.pem')],
      signerCertificate: vectorCert('cbrski/pledge.pem'), at: at('2022-12-10T00:00:00Z') }))).code).toBe('bad-signature');
    expect((await rejection(verifyEnvelope('cose', readVector('cbrski/rvr.cose'), { anchors: [vectorCert('cbrski/masa_ca.pem')],
      at: at('2022-12-07T00:00:00Z') }))).code).toBe('untrusted-chain');
  });

  it('legacy compact JWS: rejected by default, verifies with allowCompact (x5c[0] as anchor)', async () => {
    for (const f of ['voucher_01', 'voucher_request_01', 'parboiled_voucher_request_01']) {
      const bytes = readVector(`jws-voucher/legacy-compact-00/${f}.compact.jws`);
      const header = JSON.parse(readVectorText(`jws-voucher/legacy-compact-00/${f}.header.json`)) as { x5c: string[] };
      const anchor = new X509Certificate(Buffer.from(header.x5c[0]!, 'base64'));
      const e = await rejection(verifyEnvelope('jws', bytes, { anchors: [anchor], at: at('2021-01-01T00:00:00Z') }));
      expect([f, e.code]).toEqual([f, 'malformed']);
      const v = await verifyEnvelope('jws', bytes, { anchors: [anchor], at: at('2021-01-01T00:00:00Z'), allowCompact: true });
      expect(JSON.parse(Buffer.from(v.payload).toString())).toEqual(JSON.parse(readVectorText(`jws-voucher/legacy-compact-00/${f}.payload.json`)));
    }
  });

  it('PRM countersigned voucher: MASA signature with its x5c, registrar signature with the pinned TestCA', () => {
    const path = 'brski-prm/voucher-registrar-countersigned.jws.json';
    const results = verifyJwsSignatures(readVector(path), (i) => ({
      anchors: [i === 0 ? x5c0(path, 0) : prmPinnedCa()], at: at('2024-06-24T09:01:25Z'),
    }));
    expect(results.map((r) => [r.error?.code, r.verified?.chain.length])).toEqual([[undefined, 1], [undefined, 2]]);
    expect(results[1]!.verified!.signer.subject).toContain('DomainRegistrar');
    // the registrar signature does not chain to the MASA's certificate
    const wrong = verifyJwsSignatures(readVector(path), { anchors: [x5c0(path, 0)], at: at('2024-06-24T09:01:25Z') });
    expect(wrong.map((r) => r.error?.code)).toEqual([undefined, 'untrusted-chain']);
  });
});

/**
 * Every format × message kind × curve: sign through the Signer interface, verify against the
 * root, and the common negative cases (tampered payload/signature, wrong anchor, expired signer).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Signer } from '../../src/crypto/signer.ts';
import { detectFormat, signEnvelope, verifyEnvelope, type VerifyEnvelopeOptions } from '../../src/envelope/index.ts';
import { BrskiError, type ErrorCode } from '../../src/errors.ts';
import { VOUCHER_FORMATS, type VoucherFormat } from '../../src/media.ts';
import { createTestPki, FAR_FUTURE, flip, type Curve, type TestPki } from './fixtures.ts';
import { indexOf, KINDS, samplePayload, type Kind } from './samples.ts';

async function rejects(p: Promise<unknown>, code: ErrorCode): Promise<BrskiError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(BrskiError);
    expect((e as BrskiError).code).toBe(code);
    return e as BrskiError;
  }
  throw new Error(`expected rejection with ${code}`);
}

/** Signer that records what it was asked to sign: proves the envelopes never bypass it. */
function recording(inner: Signer): Signer & { calls: number } {
  const s = {
    algorithm: inner.algorithm, publicKey: inner.publicKey, certificates: inner.certificates, calls: 0,
    sign(data: Uint8Array) { s.calls++; return inner.sign(data); },
  };
  return s;
}

for (const curve of ['P-256', 'P-384'] as Curve[]) {
  describe(`envelopes with ${curve}`, () => {
    let pki: TestPki;
    let other: TestPki;
    beforeAll(() => { pki = createTestPki(curve); other = createTestPki(curve); });
    afterAll(() => { pki.cleanup(); other.cleanup(); });

    // COSE PVRs carry no certificates (the verifier has the DTLS client cert); the others embed the chain.
    const sign = (format: VoucherFormat, kind: Kind, signer: Signer = pki.signer) =>
      signEnvelope(format, samplePayload(format, kind), signer,
        format === 'cose' && kind !== 'pvr' ? { unprotectedX5bag: signer.certificates } : {});
    const opts = (format: VoucherFormat, kind: Kind, extra: Partial<VerifyEnvelopeOptions> = {}): VerifyEnvelopeOptions =>
      format === 'cose' && kind === 'pvr'
        ? { anchors: [pki.root.cert], signerCertificate: pki.leaf.cert, extraCertificates: [pki.intermediate.cert], ...extra }
        : { anchors: [pki.root.cert], ...extra };

    for (const format of VOUCHER_FORMATS) {
      for (const kind of KINDS) {
        it(`${format} ${kind}: round trip`, async () => {
          const signer = recording(pki.signer);
          const bytes = await sign(format, kind, signer);
          expect(signer.calls).toBe(1);
          expect(detectFormat(bytes)).toBe(format);
          const v = await verifyEnvelope(format, bytes, opts(format, kind));
          expect(v.format).toBe(format);
          expect(Buffer.from(v.payload).equals(Buffer.from(samplePayload(format, kind)))).toBe(true);
          expect(v.signer.fingerprint256).toBe(pki.leaf.cert.fingerprint256);
          expect(v.chain.map((c) => c.fingerprint256)).toEqual(
            [pki.leaf.cert, pki.intermediate.cert, pki.root.cert].map((c) => c.fingerprint256));
          expect(v.warnings).toEqual([]);
        });
      }

      it(`${format}: flipped byte in the payload → bad-signature`, async () => {
        const bytes = await sign(format, 'voucher');
        let tampered: Uint8Array;
        if (format === 'jws') {
          const obj = JSON.parse(Buffer.from(bytes).toString()) as { payload: string };
          const p = Buffer.from(obj.payload, 'base64url'); p[5]! ^= 0x01;
          tampered = Buffer.from(JSON.stringify({ ...obj, payload: p.toString('base64url') }));
        } else {
          const at = indexOf(bytes, samplePayload(format, 'voucher'));
          expect(at).toBeGreaterThan(0);
          tampered = flip(bytes, at + 10);
        }
        await rejects(verifyEnvelope(format, tampered, opts(format, 'voucher')), 'bad-signature');
      });

      it(`${format}: flipped byte in the signature → bad-signature`, async () => {
        const bytes = await sign(format, 'voucher');
        let tampered: Uint8Array;
        if (format === 'jws') {
          const obj = JSON.parse(Buffer.from(bytes).toString()) as { signatures: Array<{ signature: string }> };
          const sig = Buffer.from(obj.signatures[0]!.signature, 'base64url'); sig[sig.length - 3]! ^= 0x01;
          obj.signatures[0]!.signature = sig.toString('base64url');
          tampered = Buffer.from(JSON.stringify(obj));
        } else {
          // CMS: the signature value closes the DER; COSE: the signature bstr is the last element.
          tampered = flip(bytes, bytes.length - 3);
        }
        await rejects(verifyEnvelope(format, tampered, opts(format, 'voucher')), 'bad-signature');
      });

      it(`${format}: signature by a key outside the chain → rejected`, async () => {
        // Same certificates, different key: the envelope claims a signer it cannot have.
        const impostor: Signer = { ...recording(other.signer), certificates: pki.signer.certificates };
        const bytes = await sign(format, 'voucher', impostor);
        await rejects(verifyEnvelope(format, bytes, opts(format, 'voucher')), 'bad-signature');
      });

      it(`${format}: wrong anchor → untrusted-chain`, async () => {
        const bytes = await sign(format, 'rvr');
        await rejects(verifyEnvelope(format, bytes, opts(format, 'rvr', { anchors: [other.root.cert] })), 'untrusted-chain');
      });

      it(`${format}: embedded chain alone is never trusted`, async () => {
        const bytes = await sign(format, 'rvr');
        await rejects(verifyEnvelope(format, bytes, opts(format, 'rvr', { anchors: [] })), 'untrusted-chain');
      });

      it(`${format}: expired signer (validated after notAfter) → certificate-expired`, async () => {
        const bytes = await sign(format, 'voucher');
        await rejects(verifyEnvelope(format, bytes, opts(format, 'voucher', { at: FAR_FUTURE })), 'certificate-expired');
      });

      it(`${format}: requireEku is enforced on the signer`, async () => {
        const bytes = await sign(format, 'rvr');
        await rejects(verifyEnvelope(format, bytes, opts(format, 'rvr', { requireEku: '1.3.6.1.5.5.7.3.28' })), 'missing-eku');
      });
    }
  });
}

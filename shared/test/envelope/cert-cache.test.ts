/**
 * The parsed-certificate cache must only ever save parsing: the same bytes give the same object,
 * other bytes never do, and every trust decision (signature over the certificate, validity at
 * the requested time) is still taken per call.
 */
import { sign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificateCacheStats, certificateFromBase64, certificateFromDer, clearCertificateCache } from '../../src/envelope/cert-cache.ts';
import { signJws, verifyJws } from '../../src/envelope/jws.ts';
import { BrskiError, type ErrorCode } from '../../src/errors.ts';
import { createTestPki, type TestPki } from './fixtures.ts';
import { samplePayload } from './samples.ts';

async function code(p: Promise<unknown>): Promise<ErrorCode | 'ok'> {
  try { await p; return 'ok'; } catch (e) { if (e instanceof BrskiError) return e.code; throw e; }
}

/** The DER with its last byte (inside the signature value) changed: still parses, no longer verifies. */
function tampered(der: Uint8Array, delta = 1): Buffer {
  const out = Buffer.from(der);
  out[out.length - 1] = (out[out.length - 1]! + delta) & 0xff;
  return out;
}

/** A General JSON JWS whose x5c we choose freely (the signature over the payload stays valid). */
async function withX5c(pki: TestPki, x5c: Uint8Array[]): Promise<Uint8Array> {
  const bytes = await signJws(samplePayload('jws', 'voucher'), pki.signer);
  const obj = JSON.parse(Buffer.from(bytes).toString()) as { payload: string; signatures: Array<{ protected: string; signature: string }> };
  const sig = obj.signatures[0]!;
  // x5c may travel in the unprotected header (it is authenticated by the chain check).
  const header = JSON.parse(Buffer.from(sig.protected, 'base64url').toString()) as Record<string, unknown>;
  delete header['x5c'];
  const p = Buffer.from(JSON.stringify(header)).toString('base64url');
  const s = sign('sha256', Buffer.from(`${p}.${obj.payload}`), { key: pki.leaf.key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  return Buffer.from(JSON.stringify({ payload: obj.payload, signatures: [{ protected: p, signature: s,
    header: { x5c: x5c.map((d) => Buffer.from(d).toString('base64')) } }] }));
}

describe('parsed-certificate cache', () => {
  let pki: TestPki;
  beforeAll(() => { pki = createTestPki('P-256'); });
  afterAll(() => { pki.cleanup(); });

  it('returns the same object for the same bytes, a different one for different bytes', () => {
    clearCertificateCache();
    const a = certificateFromDer(new Uint8Array(pki.leaf.cert.raw));
    const b = certificateFromDer(Buffer.from(pki.leaf.cert.raw)); // another copy of the bytes
    expect(b).toBe(a);
    const t = certificateFromDer(tampered(pki.leaf.cert.raw));
    expect(t).not.toBe(a);
    expect(t.fingerprint256).not.toBe(a.fingerprint256);
    expect(certificateCacheStats()).toMatchObject({ hits: 1, misses: 2, size: 2 });
  });

  it('does not cache bytes that are not a certificate', () => {
    clearCertificateCache();
    const junk = Buffer.from(pki.leaf.cert.raw).subarray(0, 40);
    expect(() => certificateFromDer(junk)).toThrow();
    expect(() => certificateFromDer(junk)).toThrow();
    expect(certificateCacheStats().size).toBe(0);
  });

  it('by base64 text: the identical text hits, other text and bad text go through the check and the parser', () => {
    clearCertificateCache();
    let checks = 0;
    const check = (t: string): void => { checks++; if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t)) throw new Error('not base64'); };
    const text = Buffer.from(pki.leaf.cert.raw).toString('base64');
    const a = certificateFromBase64(text, check);
    const b = certificateFromBase64(`${text}`.slice(0), check); // an equal string
    expect(b).toBe(a);
    expect(checks).toBe(1);
    // the same certificate by DER is the same object (one cache underneath)
    expect(certificateFromDer(Buffer.from(pki.leaf.cert.raw))).toBe(a);
    const forged = certificateFromBase64(tampered(pki.leaf.cert.raw).toString('base64'), check);
    expect(forged).not.toBe(a);
    expect(checks).toBe(2);
    const bad = `${text.slice(0, 20)} ${text.slice(21)}`;
    expect(() => certificateFromBase64(bad, check)).toThrow('not base64');
    expect(() => certificateFromBase64(bad, check)).toThrow('not base64'); // refused again, not cached
    expect(() => certificateFromBase64(text.slice(0, 40), check)).toThrow(); // valid base64, not a certificate
    expect(() => certificateFromBase64(text.slice(0, 40), check)).toThrow();
    expect(checks).toBe(6);
  });

  it('stays bounded', () => {
    clearCertificateCache();
    const { max } = certificateCacheStats();
    const base = Buffer.from(pki.leaf.cert.raw);
    for (let i = 0; i < max + 50; i++) {
      const der = Buffer.from(base);
      der.writeUInt16BE(i, der.length - 2); // distinct signature bytes, still well-formed
      certificateFromDer(der);
    }
    expect(certificateCacheStats().size).toBe(max);
  });

  it('a tampered signer certificate fails even right after the genuine one verified', async () => {
    const anchors = [pki.root.cert];
    const genuine = await withX5c(pki, [pki.leaf.cert.raw, pki.intermediate.cert.raw]);
    expect(await code(verifyJws(genuine, { anchors }))).toBe('ok');
    expect(await code(verifyJws(genuine, { anchors }))).toBe('ok'); // cached path
    const forged = await withX5c(pki, [tampered(pki.leaf.cert.raw), pki.intermediate.cert.raw]);
    expect(await code(verifyJws(forged, { anchors }))).toBe('untrusted-chain');
    const forgedCa = await withX5c(pki, [pki.leaf.cert.raw, tampered(pki.intermediate.cert.raw)]);
    expect(await code(verifyJws(forgedCa, { anchors }))).toBe('untrusted-chain');
    expect(await code(verifyJws(genuine, { anchors }))).toBe('ok');
  });

  it('checks validity per call: a cached signer is refused at a time after it expired', async () => {
    const anchors = [pki.root.cert];
    const bytes = await withX5c(pki, [pki.leaf.cert.raw, pki.intermediate.cert.raw]);
    expect(await code(verifyJws(bytes, { anchors, at: new Date() }))).toBe('ok');
    const later = new Date(Date.parse(pki.leaf.cert.validTo) + 86_400_000);
    expect(await code(verifyJws(bytes, { anchors, at: later }))).toBe('certificate-expired');
    const earlier = new Date(Date.parse(pki.leaf.cert.validFrom) - 86_400_000);
    expect(await code(verifyJws(bytes, { anchors, at: earlier }))).toBe('certificate-expired');
    expect(await code(verifyJws(bytes, { anchors }))).toBe('ok');
  });

  it('a wrong anchor still fails for a cached chain', async () => {
    const other = createTestPki('P-256');
    try {
      const bytes = await withX5c(pki, [pki.leaf.cert.raw, pki.intermediate.cert.raw]);
      expect(await code(verifyJws(bytes, { anchors: [pki.root.cert] }))).toBe('ok');
      expect(await code(verifyJws(bytes, { anchors: [other.root.cert] }))).toBe('untrusted-chain');
    } finally {
      other.cleanup();
    }
  });
});

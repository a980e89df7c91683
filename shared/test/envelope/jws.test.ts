import { sign as nodeSign, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addJwsSignature, inspectJws, signJws, verifyJws, verifyJwsSignatures } from '../../src/envelope/jws.ts';
import { BrskiError, type ErrorCode } from '../../src/errors.ts';
import { createTestPki, type TestPki } from './fixtures.ts';
import { samplePayload } from './samples.ts';

const b64u = (v: string | Uint8Array) => Buffer.from(v).toString('base64url');

/** Hand-made JWS with an arbitrary protected header (to test what our signer would never emit). */
function craft(header: Record<string, unknown>, payload: Uint8Array, key: KeyObject, hash = 'sha256'): { protected: string; payload: string; signature: string } {
  const p = b64u(JSON.stringify(header));
  const pl = b64u(payload);
  const sig = nodeSign(hash, Buffer.from(`${p}.${pl}`), { key, dsaEncoding: 'ieee-p1363' });
  return { protected: p, payload: pl, signature: b64u(sig) };
}
const general = (c: ReturnType<typeof craft>) => Buffer.from(JSON.stringify({ payload: c.payload, signatures: [{ protected: c.protected, signature: c.signature }] }));

async function code(p: Promise<unknown>): Promise<ErrorCode | 'ok'> {
  try { await p; return 'ok'; } catch (e) { if (e instanceof BrskiError) return e.code; throw e; }
}

describe('JWS', () => {
  let pki: TestPki;
  let other: TestPki;
  const payload = samplePayload('jws', 'voucher');
  beforeAll(() => { pki = createTestPki('P-256'); other = createTestPki('P-384'); });
  afterAll(() => { pki.cleanup(); other.cleanup(); });
  const x5c = () => [pki.leaf.cert.raw.toString('base64'), pki.intermediate.cert.raw.toString('base64')];
  const anchors = () => ({ anchors: [pki.root.cert] });

  it('emits General JSON with protected {alg, typ, x5c: signer + chain in standard base64}', async () => {
    const obj = JSON.parse(Buffer.from(await signJws(payload, pki.signer)).toString()) as Record<string, unknown>;
    expect(Object.keys(obj).sort()).toEqual(['payload', 'signatures']);
    const sig = (obj['signatures'] as Array<Record<string, string>>)[0]!;
    const header = JSON.parse(Buffer.from(sig['protected']!, 'base64url').toString()) as Record<string, unknown>;
    expect(header).toEqual({ alg: 'ES256', typ: 'voucher-jws+json', x5c: x5c() });
    expect(sig['signature']!.length).toBe(86); // 64-byte r||s
  });

  it('typ: null omits typ, and a missing typ verifies', async () => {
    const bytes = await signJws(payload, pki.signer, { typ: null });
    expect(inspectJws(bytes).payload).toEqual(payload);
    await verifyJws(bytes, anchors());
  });

  it('drops a self-signed anchor from x5c', async () => {
    const signer = pki.signer.withCertificates([pki.leaf.cert, pki.intermediate.cert, pki.root.cert]);
    const obj = JSON.parse(Buffer.from(await signJws(payload, signer)).toString()) as { signatures: Array<{ protected: string }> };
    expect((JSON.parse(Buffer.from(obj.signatures[0]!.protected, 'base64url').toString()) as { x5c: string[] }).x5c).toEqual(x5c());
  });

  it('requires alg, rejects unknown/none alg, alg vs key mismatch and crit', async () => {
    const key = pki.leaf.key;
    expect(await code(verifyJws(general(craft({ typ: 'voucher-jws+json', x5c: x5c() }, payload, key)), anchors()))).toBe('malformed');
    expect(await code(verifyJws(general(craft({ alg: 'none', x5c: x5c() }, payload, key)), anchors()))).toBe('bad-signature');
    expect(await code(verifyJws(general(craft({ alg: 'HS256', x5c: x5c() }, payload, key)), anchors()))).toBe('bad-signature');
    expect(await code(verifyJws(general(craft({ alg: 'ES384', x5c: x5c() }, payload, key)), anchors()))).toBe('bad-signature');
    expect(await code(verifyJws(general(craft({ alg: 'ES256', crit: ['exp'], exp: 1, x5c: x5c() }, payload, key)), anchors()))).toBe('malformed');
    expect(await code(verifyJws(general(craft({ alg: 'ES256', x5c: x5c() }, payload, key)), anchors()))).toBe('ok');
  });

  it('alg only in the unprotected header is not enough', async () => {
    const c = craft({ x5c: x5c() }, payload, pki.leaf.key);
    const bytes = Buffer.from(JSON.stringify({ payload: c.payload, signatures: [{ protected: c.protected, header: { alg: 'ES256' }, signature: c.signature }] }));
    expect(await code(verifyJws(bytes, anchors()))).toBe('malformed');
  });

  it('typ, if present, must be voucher-jws+json (application/ prefix and case tolerated)', async () => {
    const key = pki.leaf.key;
    expect(await code(verifyJws(general(craft({ alg: 'ES256', typ: 'JWT', x5c: x5c() }, payload, key)), anchors()))).toBe('malformed');
    expect(await code(verifyJws(general(craft({ alg: 'ES256', typ: 'application/Voucher-JWS+JSON', x5c: x5c() }, payload, key)), anchors()))).toBe('ok');
  });

  it('accepts a signer-only x5c with the intermediate supplied out of band, and tolerates \\/ escapes', async () => {
    const c = craft({ alg: 'ES256', x5c: [pki.leaf.cert.raw.toString('base64')] }, payload, pki.leaf.key);
    expect(await code(verifyJws(general(c), anchors()))).toBe('untrusted-chain');
    const v = await verifyJws(general(c), { ...anchors(), extraCertificates: [pki.intermediate.cert] });
    expect(v.chain).toHaveLength(3);
    // same object with every "/" in the JSON text written as "\/"
    const escaped = Buffer.from(general(c).toString().replace(/\//g, '\\/'));
    expect(await code(verifyJws(escaped, { ...anchors(), extraCertificates: [pki.intermediate.cert] }))).toBe('ok');
  });

  it('rejects x5c that is not standard base64 or not a certificate, and a missing signer', async () => {
    const key = pki.leaf.key;
    expect(await code(verifyJws(general(craft({ alg: 'ES256', x5c: ['***'] }, payload, key)), anchors()))).toBe('malformed');
    expect(await code(verifyJws(general(craft({ alg: 'ES256', x5c: ['AAAA'] }, payload, key)), anchors()))).toBe('malformed');
    expect(await code(verifyJws(general(craft({ alg: 'ES256', x5c: 'MII' }, payload, key)), anchors()))).toBe('malformed');
    expect(await code(verifyJws(general(craft({ alg: 'ES256' }, payload, key)), anchors()))).toBe('bad-signature');
    expect(await code(verifyJws(general(craft({ alg: 'ES256' }, payload, key)),
      { ...anchors(), signerCertificate: pki.leaf.cert, extraCertificates: [pki.intermediate.cert] }))).toBe('ok');
  });

  it('rejects compact unless allowCompact, and always rejects flattened', async () => {
    const c = craft({ alg: 'ES256', x5c: x5c() }, payload, pki.leaf.key);
    const compact = Buffer.from(`${c.protected}.${c.payload}.${c.signature}`);
    await expect(verifyJws(compact, anchors())).rejects.toThrow(/compact serialization is not accepted/);
    const v = await verifyJws(compact, { ...anchors(), allowCompact: true });
    expect(v.warnings.join()).toMatch(/compact/);
    const flattened = Buffer.from(JSON.stringify(c));
    await expect(verifyJws(flattened, anchors())).rejects.toThrow(/flattened/);
  });

  it('rejects a payload or signature that is not base64url, and an empty signatures array', async () => {
    const c = craft({ alg: 'ES256', x5c: x5c() }, payload, pki.leaf.key);
    for (const bad of [{ ...c, payload: `${c.payload}+` }, { ...c, signature: `${c.signature}=` }]) {
      expect(await code(verifyJws(general(bad), anchors()))).toBe('malformed');
    }
    expect(await code(verifyJws(Buffer.from(JSON.stringify({ payload: c.payload, signatures: [] })), anchors()))).toBe('malformed');
    expect(await code(verifyJws(Buffer.from(JSON.stringify({ signatures: [c] })), anchors()))).toBe('malformed');
  });

  it('countersignature: addJwsSignature + per-signature anchors; verifyJws checks [0] unless told otherwise', async () => {
    const masaSigned = await signJws(payload, pki.signer);
    const both = await addJwsSignature(masaSigned, other.signer);
    expect(inspectJws(both).embedded).toHaveLength(4);
    await verifyJws(both, anchors());
    expect(await code(verifyJws(both, { ...anchors(), signatureIndex: 1 }))).toBe('untrusted-chain');
    expect(await code(verifyJws(both, { anchors: [other.root.cert], signatureIndex: 1 }))).toBe('ok');
    expect(await code(verifyJws(both, { ...anchors(), signatureIndex: 2 }))).toBe('bad-signature');

    const results = verifyJwsSignatures(both, (i) => ({ anchors: [i === 0 ? pki.root.cert : other.root.cert] }));
    expect(results.map((r) => [r.index, r.verified?.signer.subject, r.error?.code])).toEqual([
      [0, 'CN=Test Signer', undefined], [1, 'CN=Test Signer', undefined]]);
    expect(results[1]!.protectedHeader['alg']).toBe('ES384');
    const oneAnchor = verifyJwsSignatures(both, anchors());
    expect(oneAnchor.map((r) => r.error?.code)).toEqual([undefined, 'untrusted-chain']);
  });
});

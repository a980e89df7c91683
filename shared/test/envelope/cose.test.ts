import { sign as nodeSign, type KeyObject } from 'node:crypto';
import { Tag } from 'cbor-x';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftwareSigner } from '../../src/crypto/software-signer.ts';
import { inspectCose, signCose, stripUnprotectedCertificates, verifyCose } from '../../src/envelope/cose.ts';
import { BrskiError, type ErrorCode } from '../../src/errors.ts';
import { cborDecode, cborEncode } from '../../src/voucher/cbor-codec.ts';
import { createTestPki, type TestPki } from './fixtures.ts';
import { samplePayload } from './samples.ts';

async function code(p: Promise<unknown>): Promise<ErrorCode | 'ok'> {
  try { await p; return 'ok'; } catch (e) { if (e instanceof BrskiError) return e.code; throw e; }
}

/** Hand-made COSE_Sign1 with arbitrary headers, signed with ES256 over the real Sig_structure. */
function craft(protectedBytes: Uint8Array, unprotected: Map<number, unknown>, payload: Uint8Array, key: KeyObject,
  tag: number | null = 18): Uint8Array {
  const tbs = cborEncode(['Signature1', protectedBytes, new Uint8Array(0), payload]);
  const sig = new Uint8Array(nodeSign('sha256', tbs, { key, dsaEncoding: 'ieee-p1363' }));
  const arr = [protectedBytes, unprotected, payload, sig];
  return cborEncode(tag === null ? arr : new Tag(arr, tag));
}

describe('COSE_Sign1', () => {
  let pki: TestPki;
  let other: TestPki;
  const payload = samplePayload('cose', 'voucher');
  const ES256 = cborEncode(new Map([[1, -7]]));
  beforeAll(() => { pki = createTestPki('P-256'); other = createTestPki('P-256'); });
  afterAll(() => { pki.cleanup(); other.cleanup(); });
  const withSigner = () => ({ anchors: [pki.root.cert], signerCertificate: pki.leaf.cert, extraCertificates: [pki.intermediate.cert] });

  it('emits tag 18, protected h\'A10126\', attached payload, 64-byte signature; x5bag placement by option', async () => {
    const bytes = await signCose(payload, pki.signer);
    expect(bytes[0]).toBe(0xd2);
    const t = cborDecode(bytes) as Tag;
    const [p, u, pl, sig] = t.value as [Uint8Array, Map<number, unknown>, Uint8Array, Uint8Array];
    expect(Buffer.from(p).toString('hex')).toBe('a10126');
    expect(u.size).toBe(0);
    expect(pl).toEqual(payload);
    expect(sig).toHaveLength(64);

    const bagged = cborDecode(await signCose(payload, pki.signer, { unprotectedX5bag: [pki.leaf.cert, pki.intermediate.cert] })) as Tag;
    expect(((bagged.value as unknown[])[1] as Map<number, Uint8Array[]>).get(32)).toHaveLength(2);
    const prot = cborDecode(await signCose(payload, pki.signer, { protectedX5bag: [pki.leaf.cert] })) as Tag;
    const protMap = cborDecode((prot.value as Uint8Array[])[0]!) as Map<number, unknown>;
    expect(protMap.get(1)).toBe(-7);
    expect(protMap.get(32)).toEqual(new Uint8Array(pki.leaf.cert.raw)); // one cert → bare bstr (RFC 9360)
    const v = await verifyCose(await signCose(payload, pki.signer, { protectedX5bag: [pki.leaf.cert, pki.intermediate.cert] }), { anchors: [pki.root.cert] });
    expect(v.chain).toHaveLength(3);
  });

  it('finds the signer in the x5bag by key; a signerCertificate with another key fails', async () => {
    const bytes = await signCose(payload, pki.signer, { unprotectedX5bag: [pki.intermediate.cert, pki.leaf.cert] });
    expect((await verifyCose(bytes, { anchors: [pki.root.cert] })).signer.fingerprint256).toBe(pki.leaf.cert.fingerprint256);
    expect(await code(verifyCose(bytes, { anchors: [pki.root.cert], signerCertificate: other.leaf.cert }))).toBe('bad-signature');
    // no certificates anywhere and none supplied
    expect(await code(verifyCose(await signCose(payload, pki.signer), { anchors: [pki.root.cert] }))).toBe('bad-signature');
  });

  it('without carried certificates, finds the signer among supplied certificates and anchors (stripped voucher)', async () => {
    const bare = await signCose(payload, pki.signer);
    const v = await verifyCose(bare, { anchors: [pki.root.cert], extraCertificates: [pki.intermediate.cert, pki.leaf.cert] });
    expect(v.signer).toBe(pki.leaf.cert);
    // signed directly with an anchor's key (cBRSKI voucher.cose is signed by the MASA CA key)
    const byRoot = await signCose(payload, new SoftwareSigner(pki.root.key, [pki.root.cert]));
    expect((await verifyCose(byRoot, { anchors: [other.root.cert, pki.root.cert] })).chain).toEqual([pki.root.cert]);
    // a supplied certificate that verifies but does not chain is still refused
    expect(await code(verifyCose(await signCose(payload, other.signer), { anchors: [pki.root.cert], extraCertificates: [other.leaf.cert] })))
      .toBe('untrusted-chain');
  });

  it('stripUnprotectedCertificates removes x5bag/x5chain and keeps the signature valid', async () => {
    const unprot = new Map<number, unknown>([[32, [new Uint8Array(pki.leaf.cert.raw)]], [33, new Uint8Array(pki.leaf.cert.raw)], [4, new Uint8Array([1])]]);
    const bytes = craft(ES256, unprot, payload, pki.leaf.key);
    expect(inspectCose(bytes).embedded).toHaveLength(1); // deduplicated
    const stripped = stripUnprotectedCertificates(bytes);
    expect(inspectCose(stripped).embedded).toHaveLength(0);
    expect(((cborDecode(stripped) as Tag).value as unknown[])[1]).toEqual(new Map([[4, new Uint8Array([1])]]));
    expect(await code(verifyCose(stripped, withSigner()))).toBe('ok');
  });

  it('requires alg in the protected header (empty h\'\' / h\'A0\', alg only unprotected)', async () => {
    for (const p of [new Uint8Array(0), cborEncode(new Map())]) {
      await expect(verifyCose(craft(p, new Map(), payload, pki.leaf.key), withSigner())).rejects.toThrow(/missing alg/);
    }
    await expect(verifyCose(craft(new Uint8Array(0), new Map([[1, -7]]), payload, pki.leaf.key), withSigner()))
      .rejects.toThrow(/alg must be in the protected header/);
  });

  it('rejects unsupported alg, crit, duplicate labels, alg/key mismatch', async () => {
    expect(await code(verifyCose(craft(cborEncode(new Map([[1, -257]])), new Map(), payload, pki.leaf.key), withSigner()))).toBe('bad-signature');
    expect(await code(verifyCose(craft(cborEncode(new Map([[1, 'ES256']])), new Map(), payload, pki.leaf.key), withSigner()))).toBe('bad-signature');
    expect(await code(verifyCose(craft(cborEncode(new Map<number, unknown>([[1, -7], [2, [99]], [99, 1]])), new Map(), payload, pki.leaf.key), withSigner()))).toBe('malformed');
    expect(await code(verifyCose(craft(ES256, new Map([[1, -7]]), payload, pki.leaf.key), withSigner()))).toBe('malformed');
    // ES384 label with a P-256 key
    expect(await code(verifyCose(craft(cborEncode(new Map([[1, -35]])), new Map(), payload, pki.leaf.key), withSigner()))).toBe('bad-signature');
  });

  it('tag handling: other tags rejected, untagged accepted with a warning', async () => {
    expect(await code(verifyCose(craft(ES256, new Map(), payload, pki.leaf.key, 98), withSigner()))).toBe('malformed');
    expect(await code(verifyCose(craft(ES256, new Map(), payload, pki.leaf.key, 17), withSigner()))).toBe('malformed');
    const v = await verifyCose(craft(ES256, new Map(), payload, pki.leaf.key, null), withSigner());
    expect(v.warnings).toEqual(['untagged COSE_Sign1']);
  });

  it('rejects structural errors: nil payload, wrong arity, non-map unprotected, protected not a map, bad x5bag', async () => {
    const sig = new Uint8Array(64);
    const cases: unknown[] = [
      new Tag([ES256, new Map(), null, sig], 18),
      new Tag([ES256, new Map(), payload], 18),
      new Tag([ES256, [], payload, sig], 18),
      new Tag([cborEncode([1, -7]), new Map(), payload, sig], 18),
      new Tag([ES256, new Map(), 'text', sig], 18),
      new Tag([ES256, new Map([[32, 'x']]), payload, sig], 18),
      new Tag([ES256, new Map([[32, new Uint8Array([1, 2, 3])]]), payload, sig], 18),
      new Map([[1, 2]]),
    ];
    for (const [i, c] of cases.entries()) expect([i, await code(verifyCose(cborEncode(c), withSigner()))]).toEqual([i, 'malformed']);
  });
});

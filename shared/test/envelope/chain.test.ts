import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChainError } from '../../src/errors.ts';
import { clearChainCache, verifyChain } from '../../src/pki/chain.ts';
import { vectorCert } from '../helpers/vectors.ts';
import { createTestPki, FAR_FUTURE, type TestPki } from './fixtures.ts';

const CMC_RA = '1.3.6.1.5.5.7.3.28';

function chainError(fn: () => unknown): ChainError {
  try { fn(); } catch (e) { if (e instanceof ChainError) return e; throw e; }
  throw new Error('expected a ChainError');
}

describe('verifyChain', () => {
  let pki: TestPki;
  let other: TestPki;
  beforeAll(() => { pki = createTestPki('P-256'); other = createTestPki('P-384'); });
  afterAll(() => { pki.cleanup(); other.cleanup(); });

  it('builds leaf → intermediate → root and returns the anchor object last', () => {
    const chain = verifyChain(pki.leaf.cert, [pki.intermediate.cert], [pki.root.cert]);
    expect(chain.map((c) => c.subject)).toEqual(['CN=Test Signer', 'CN=Test Intermediate CA', 'CN=Test Root CA']);
    expect(chain[2]).toBe(pki.root.cert);
  });

  it('finds the path in an unordered bag with unrelated and duplicate certificates', () => {
    const bag = [other.intermediate.cert, pki.root.cert, pki.intermediate.cert, pki.intermediate.cert, other.leaf.cert];
    expect(verifyChain(pki.leaf.cert, bag, [other.root.cert, pki.root.cert])).toHaveLength(3);
  });

  it('accepts an intermediate as the anchor and the signer itself as the anchor', () => {
    expect(verifyChain(pki.leaf.cert, [], [pki.intermediate.cert])).toHaveLength(2);
    expect(verifyChain(pki.leaf.cert, [], [pki.leaf.cert])).toEqual([pki.leaf.cert]);
  });

  it('rejects a missing intermediate and a foreign anchor as untrusted-chain', () => {
    expect(chainError(() => verifyChain(pki.leaf.cert, [], [pki.root.cert])).code).toBe('untrusted-chain');
    expect(chainError(() => verifyChain(pki.leaf.cert, [pki.intermediate.cert], [other.root.cert])).code).toBe('untrusted-chain');
    expect(chainError(() => verifyChain(pki.leaf.cert, [pki.intermediate.cert], [])).code).toBe('untrusted-chain');
  });

  it('rejects an end-entity certificate posing as an issuer (CA flag required)', () => {
    // keyCertSign but CA:FALSE: OpenSSL's checkIssued accepts the link, our CA-flag check must not.
    const fakeCa = pki.issue('fake-ca', { issuer: pki.intermediate, keyUsage: 'digitalSignature,keyCertSign' });
    const child = pki.issue('child-of-fake-ca', { issuer: fakeCa });
    expect(child.cert.checkIssued(fakeCa.cert)).toBe(true);
    expect(chainError(() => verifyChain(child.cert, [fakeCa.cert, pki.intermediate.cert], [pki.root.cert])).code)
      .toBe('untrusted-chain');
    // and as an anchor it cannot issue either
    expect(chainError(() => verifyChain(child.cert, [], [fakeCa.cert])).code).toBe('untrusted-chain');
  });

  it('reports certificate-expired after notAfter and before notBefore, never for the anchor', () => {
    expect(chainError(() => verifyChain(pki.leaf.cert, [pki.intermediate.cert], [pki.root.cert], FAR_FUTURE)).code)
      .toBe('certificate-expired');
    expect(chainError(() => verifyChain(pki.leaf.cert, [pki.intermediate.cert], [pki.root.cert], new Date('2001-01-01'))).code)
      .toBe('certificate-expired');
    // The leaf as its own anchor is a (name, key) pair: no validity check.
    expect(verifyChain(pki.leaf.cert, [], [pki.leaf.cert], FAR_FUTURE)).toHaveLength(1);
  });

  it('does not let the link cache bypass the validity check', () => {
    clearChainCache();
    verifyChain(pki.leaf.cert, [pki.intermediate.cert], [pki.root.cert]);
    expect(chainError(() => verifyChain(pki.leaf.cert, [pki.intermediate.cert], [pki.root.cert], FAR_FUTURE)).code)
      .toBe('certificate-expired');
  });

  it('enforces requireEku on the leaf only when asked', () => {
    const ra = pki.issue('registrar', { issuer: pki.intermediate, eku: `${CMC_RA},serverAuth,clientAuth` });
    expect(verifyChain(ra.cert, [pki.intermediate.cert], [pki.root.cert], new Date(), { requireEku: CMC_RA })).toHaveLength(3);
    const e = chainError(() => verifyChain(pki.leaf.cert, [pki.intermediate.cert], [pki.root.cert], new Date(), { requireEku: CMC_RA }));
    expect(e.code).toBe('missing-eku');
    const serverOnly = pki.issue('server-only', { issuer: pki.intermediate, eku: 'serverAuth' });
    expect(chainError(() => verifyChain(serverOnly.cert, [pki.intermediate.cert], [pki.root.cert], new Date(), { requireEku: CMC_RA })).code)
      .toBe('missing-eku');
  });

  it('consults checkRevoked for every non-anchor certificate', () => {
    const revokedIntermediate = (c: { fingerprint256: string }) => c.fingerprint256 === pki.intermediate.cert.fingerprint256;
    const e = chainError(() => verifyChain(pki.leaf.cert, [pki.intermediate.cert], [pki.root.cert], new Date(), { checkRevoked: revokedIntermediate }));
    expect(e.code).toBe('certificate-revoked');
    const revokedRoot = (c: { fingerprint256: string }) => c.fingerprint256 === pki.root.cert.fingerprint256;
    expect(verifyChain(pki.leaf.cert, [pki.intermediate.cert], [pki.root.cert], new Date(), { checkRevoked: revokedRoot })).toHaveLength(3);
  });

  it('refuses an oversized certificate bag instead of searching it', () => {
    const bag = Array.from({ length: 70 }, () => pki.intermediate.cert);
    expect(chainError(() => verifyChain(pki.leaf.cert, bag, [pki.root.cert])).code).toBe('untrusted-chain');
  });

  describe('published vectors', () => {
    it('matches an anchor by subject + key when the bytes differ (cBRSKI re-issued CA)', async () => {
      const { inspectCose } = await import('../../src/envelope/cose.ts');
      const { readVector } = await import('../helpers/vectors.ts');
      const bag = inspectCose(readVector('cbrski/rvr.cose')).embedded;
      const reissued = vectorCert('cbrski/domain_ca.pem');
      expect(bag[1]!.fingerprint256).not.toBe(reissued.fingerprint256);
      const chain = verifyChain(bag[0]!, [], [reissued], new Date('2022-12-07T00:00:00Z'));
      expect(chain[1]).toBe(reissued);
      // and the re-issued CA as the *only* element of the path (signer = anchor by subject + key)
      expect(verifyChain(bag[1]!, [], [reissued], new Date('2022-12-07T00:00:00Z'))).toEqual([reissued]);
    });

    it('rejects a same-name CA with a different key (rfc8366bis vendor certificate)', () => {
      const masa = vectorCert('rfc8995/masa.crt');
      const fake = vectorCert('rfc8366bis/vendor-00-D0-E5-F2-00-02.crt');
      expect(fake.subject).toBe(vectorCert('rfc8995/vendor.crt').subject);
      expect(chainError(() => verifyChain(masa, [], [fake], new Date('2022-07-11T00:00:00Z'))).code).toBe('untrusted-chain');
      expect(verifyChain(masa, [], [vectorCert('rfc8995/vendor.crt')], new Date('2022-07-11T00:00:00Z'))).toHaveLength(2);
    });

    it('requires cmcRA on the RFC 8995 registrar and finds it', () => {
      const jrc = vectorCert('rfc8995/jrc_prime256v1.crt');
      expect(verifyChain(jrc, [], [vectorCert('rfc8995/ownerca_secp384r1.crt')], new Date('2021-04-14T00:00:00Z'),
        { requireEku: CMC_RA })).toHaveLength(2);
    });
  });
});

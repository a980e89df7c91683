/** decodeCertsOnly on the TLV reader: the structure around the certificates stays strictly checked. */
import { describe, expect, it, beforeAll } from 'vitest';
import { MalformedError } from '../../src/errors.ts';
import { decodeCertsOnly, encodeCertsOnly } from '../../src/est/index.ts';
import { derSequence, derTlv } from '../../src/pki/der.ts';
import { makeTestPki } from '../pki/fixtures.ts';

let pki: Awaited<ReturnType<typeof makeTestPki>>;
beforeAll(async () => { pki = await makeTestPki(); });

const SIGNED_DATA_OID = Uint8Array.of(0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02);
const DATA_OID = Uint8Array.of(0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01);
const EMPTY_SET = Uint8Array.of(0x31, 0x00);

/** A certs-only message built from parts, so single parts can be broken. */
function message(parts: { digestAlgs?: Uint8Array; certs?: Uint8Array[]; crls?: Uint8Array; signerInfos?: Uint8Array; extra?: Uint8Array }): Uint8Array {
  const sd = derSequence(
    Uint8Array.of(0x02, 0x01, 0x01), parts.digestAlgs ?? EMPTY_SET, derSequence(DATA_OID),
    ...(parts.certs ? [derTlv(0xa0, ...parts.certs)] : []), ...(parts.crls ? [parts.crls] : []), parts.signerInfos ?? EMPTY_SET,
  );
  return derSequence(SIGNED_DATA_OID, derTlv(0xa0, sd), ...(parts.extra ? [parts.extra] : []));
}

describe('decodeCertsOnly (strict structure)', () => {
  it('reads a hand-built message like the encoder output, certificate bytes unchanged', () => {
    const der = message({ certs: [new Uint8Array(pki.idevidCa.raw), new Uint8Array(pki.root.raw)], crls: Uint8Array.of(0xa1, 0x00) });
    expect(decodeCertsOnly(der).map((c) => c.fingerprint256)).toEqual([pki.idevidCa.fingerprint256, pki.root.fingerprint256]);
    expect(Buffer.from(decodeCertsOnly(encodeCertsOnly([pki.idevid]))[0]!.raw)).toEqual(Buffer.from(pki.idevid.raw));
  });

  it('skips attribute-certificate choices ([2]) but refuses them malformed', () => {
    const attrCert = derTlv(0xa2, derSequence(Uint8Array.of(0x02, 0x01, 0x01)));
    expect(decodeCertsOnly(message({ certs: [attrCert, new Uint8Array(pki.root.raw)] }))).toHaveLength(1);
    const broken = Uint8Array.of(0xa2, 0x03, 0x30, 0x05, 0x02);
    expect(() => decodeCertsOnly(message({ certs: [broken, new Uint8Array(pki.root.raw)] }))).toThrow(MalformedError);
  });

  it('refuses malformed BER outside the certificates (digestAlgorithms, crls)', () => {
    expect(() => decodeCertsOnly(message({ digestAlgs: Uint8Array.of(0x31, 0x02, 0x30, 0x05), certs: [new Uint8Array(pki.root.raw)] }))).toThrow(MalformedError);
    expect(() => decodeCertsOnly(message({ certs: [new Uint8Array(pki.root.raw)], crls: Uint8Array.of(0xa1, 0x02, 0x30, 0x09) }))).toThrow(MalformedError);
  });

  it('refuses trailing bytes, an extra ContentInfo element, unexpected SignedData elements and signers', () => {
    const ok = message({ certs: [new Uint8Array(pki.root.raw)] });
    expect(() => decodeCertsOnly(new Uint8Array([...ok, 0x00]))).toThrow(/trailing/);
    expect(() => decodeCertsOnly(message({ certs: [new Uint8Array(pki.root.raw)], extra: Uint8Array.of(0x05, 0x00) }))).toThrow(MalformedError);
    expect(() => decodeCertsOnly(message({ certs: [new Uint8Array(pki.root.raw)], crls: Uint8Array.of(0xa2, 0x00) }))).toThrow(/unexpected/);
    expect(() => decodeCertsOnly(message({ certs: [new Uint8Array(pki.root.raw)], signerInfos: Uint8Array.of(0x31, 0x02, 0x30, 0x00) }))).toThrow(/signers/);
  });

  it('a certificate OpenSSL cannot parse is MalformedError', () => {
    const notACertificate = derSequence(Uint8Array.of(0x02, 0x01, 0x01)); // a well-formed SEQUENCE, but no X.509 shape
    expect(() => decodeCertsOnly(message({ certs: [notACertificate] }))).toThrow(/unparsable certificate/);
  });
});

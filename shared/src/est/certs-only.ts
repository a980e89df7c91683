/**
 * "Certs-only" CMS (RFC 5652 degenerate SignedData, RFC 7030 §4.1.3 / §4.2.3, CoAP CF 281).
 * Assembled by hand from the certificates' own DER rather than through pkijs objects, so every
 * certificate goes out byte-for-byte as issued (pkijs re-encodes parsed certificates).
 */
import { X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import { MalformedError } from '../errors.ts';
import { children, derSequence, derTlv, parseDer, rawBytes, tagOf } from '../pki/der.ts';
import { OID } from '../pki/oids.ts';

const oidDer = (oid: string): Uint8Array => new Uint8Array(new asn1js.ObjectIdentifier({ value: oid }).toBER());
const EMPTY_SET = Uint8Array.of(0x31, 0x00);

/** ContentInfo{signedData: SignedData v1, no digest algorithms, id-data without content, certificates, no signers}. */
export function encodeCertsOnly(certs: readonly X509Certificate[]): Uint8Array {
  if (certs.length === 0) throw new TypeError('certs-only: at least one certificate');
  const signedData = derSequence(
    Uint8Array.of(0x02, 0x01, 0x01), // version 1
    EMPTY_SET, // digestAlgorithms
    derSequence(oidDer(OID.data)), // encapContentInfo without eContent
    derTlv(0xa0, ...certs.map((c) => new Uint8Array(c.raw))), // [0] IMPLICIT CertificateSet, in the given order
    EMPTY_SET, // signerInfos
  );
  return derSequence(oidDer(OID.signedData), derTlv(0xa0, signedData));
}

/**
 * Certificates of a certs-only message, in order. Tolerates empty CRL sets and other BER forms
 * seen in the wild (RFC 9148 A.1 carries `a1 00`); refuses messages with signers (not certs-only)
 * and ignores non-X.509 certificate choices (attribute certificates).
 */
export function decodeCertsOnly(der: Uint8Array): X509Certificate[] {
  const ci = children(parseDer(der, 'certs-only'), 'ContentInfo');
  const [type, wrapped] = ci;
  if (!(type instanceof asn1js.ObjectIdentifier) || type.valueBlock.toString() !== OID.signedData || !wrapped) {
    throw new MalformedError('certs-only: ContentInfo of type signedData expected');
  }
  const t = tagOf(wrapped);
  if (t.cls !== 3 || t.number !== 0) throw new MalformedError('certs-only: [0] content expected');
  const sdBlock = children(wrapped, 'content')[0];
  if (!sdBlock) throw new MalformedError('certs-only: empty content');
  const sd = children(sdBlock, 'SignedData');
  if (!(sd[0] instanceof asn1js.Integer) || !(sd[1] instanceof asn1js.Set) || !(sd[2] instanceof asn1js.Sequence)) {
    throw new MalformedError('certs-only: SignedData {version, digestAlgorithms, encapContentInfo} expected');
  }
  const signerInfos = sd[sd.length - 1];
  if (!(signerInfos instanceof asn1js.Set)) throw new MalformedError('certs-only: signerInfos SET expected');
  if (children(signerInfos, 'signerInfos').length > 0) throw new MalformedError('certs-only: message has signers');
  const certs: X509Certificate[] = [];
  for (const block of sd.slice(3, -1)) {
    const bt = tagOf(block);
    if (bt.cls !== 3 || bt.number > 1) throw new MalformedError('certs-only: unexpected SignedData element');
    if (bt.number === 1) continue; // crls
    for (const c of children(block, 'certificates')) {
      if (!(c instanceof asn1js.Sequence)) continue; // [n] tagged choices: not X.509 certificates
      try {
        certs.push(new X509Certificate(Buffer.from(rawBytes(c))));
      } catch (e) {
        throw new MalformedError('certs-only: unparsable certificate', { cause: e });
      }
    }
  }
  return certs;
}

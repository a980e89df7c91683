/**
 * "Certs-only" CMS (RFC 5652 degenerate SignedData, RFC 7030 §4.1.3 / §4.2.3, CoAP CF 281).
 * Assembled by hand from the certificates' own DER rather than through pkijs objects, so every
 * certificate goes out byte-for-byte as issued (pkijs re-encodes parsed certificates).
 */
import { X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import { certificateFromDer } from '../envelope/cert-cache.ts';
import {
  children, expectUniversal, isContext, isUniversal, oid, raw, readTlv, smallInteger, UNIVERSAL, type Tlv,
} from '../envelope/der.ts';
import { MalformedError } from '../errors.ts';
import { derSequence, derTlv } from '../pki/der.ts';
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
 *
 * Read with the TLV reader of envelope/der.ts rather than asn1js: asn1js decoded every element of
 * every embedded certificate only for OpenSSL to parse the certificate again (~0.45 ms per message;
 * this reader needs a few µs). Strictness is kept: the whole input must be one well-formed element,
 * every structure outside the certificates is walked, and each certificate must parse in OpenSSL.
 * Parsed certificates come from the shared cache (envelope/cert-cache.ts): a fleet fetches the
 * same /cacerts answer thousands of times.
 */
export function decodeCertsOnly(der: Uint8Array): X509Certificate[] {
  if (der.length === 0) throw new MalformedError('certs-only: empty input');
  const top = readTlv(der, 0);
  if (top.end !== der.length) throw new MalformedError(`certs-only: ${der.length - top.end} trailing bytes after the DER element`);
  const ci = children(der, expectUniversal(top, UNIVERSAL.sequence, 'certs-only ContentInfo'));
  const [type, wrapped] = ci;
  if (!isUniversal(type, UNIVERSAL.oid) || oid(der, type!) !== OID.signedData || !wrapped || ci.length !== 2) {
    throw new MalformedError('certs-only: ContentInfo of type signedData expected');
  }
  if (!isContext(wrapped, 0) || !wrapped.constructed) throw new MalformedError('certs-only: [0] content expected');
  const content = children(der, wrapped);
  if (content.length !== 1) throw new MalformedError('certs-only: [0] must hold exactly one SignedData');
  const sd = children(der, expectUniversal(content[0], UNIVERSAL.sequence, 'certs-only SignedData'));
  if (!isUniversal(sd[0], UNIVERSAL.integer) || !isUniversal(sd[1], UNIVERSAL.set) || !isUniversal(sd[2], UNIVERSAL.sequence)) {
    throw new MalformedError('certs-only: SignedData {version, digestAlgorithms, encapContentInfo} expected');
  }
  smallInteger(der, sd[0]!);
  wellFormed(der, sd[1]!);
  wellFormed(der, sd[2]!);
  const signerInfos = sd[sd.length - 1];
  if (sd.length < 4 || !isUniversal(signerInfos, UNIVERSAL.set) || !signerInfos!.constructed) {
    throw new MalformedError('certs-only: signerInfos SET expected');
  }
  if (children(der, signerInfos!).length > 0) throw new MalformedError('certs-only: message has signers');
  const certs: X509Certificate[] = [];
  for (const block of sd.slice(3, -1)) {
    if (block.cls !== 2 || block.tag > 1 || !block.constructed) throw new MalformedError('certs-only: unexpected SignedData element');
    if (block.tag === 1) { wellFormed(der, block); continue; } // crls
    for (const c of children(der, block)) {
      if (!isUniversal(c, UNIVERSAL.sequence)) { wellFormed(der, c); continue; } // [n] tagged choices: not X.509 certificates
      try {
        certs.push(certificateFromDer(raw(der, c)));
      } catch (e) {
        throw new MalformedError('certs-only: unparsable certificate', { cause: e });
      }
    }
  }
  return certs;
}

/** Walks every element under `t` (bounded depth in readTlv), so malformed BER anywhere is refused. */
function wellFormed(der: Uint8Array, t: Tlv, depth = 0): void {
  if (!t.constructed) return;
  for (const c of children(der, t, depth)) wellFormed(der, c, depth + 1);
}

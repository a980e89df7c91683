/**
 * PKCS#10 certification requests (RFC 2986): created through a Signer (a pledge's key may live in
 * a secure element), parsed strictly, and verified for proof of possession with node:crypto.
 */
import { createPublicKey, ECDH, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { BrskiError, MalformedError } from '../errors.ts';
import type { Signer } from '../crypto/signer.ts';
import {
  children, contents, expectUniversal, isContext, isUniversal, octetString, oid, raw, readTlv, smallInteger, UNIVERSAL, type Tlv,
} from '../envelope/der.ts';
import {
  assertWellFormed, derOid, derSequence, derTlv, directoryString, isStrictDer, readName, rememberSpki, spkiOfKey,
} from './der.ts';
import {
  encodeName, parseSubjectAltName, subjectAltNameExtension, type DistinguishedName, type ExtensionInput, type SubjectAltName,
} from './extensions.ts';
import { extensionDer, signAndAssemble } from './certificate.ts';
import { OID, SIGNATURE_HASH } from './oids.ts';

export interface CsrOptions {
  extensions?: readonly ExtensionInput[];
  /** Convenience: adds a subjectAltName extension. */
  subjectAltName?: SubjectAltName;
  challengePassword?: string;
}

export interface CsrAttribute { type: string; values: Uint8Array[] }

export interface ParsedCsr {
  der: Uint8Array;
  subject: Array<[string, string]>;
  subjectDer: Uint8Array;
  publicKey: KeyObject;
  spkiDer: Uint8Array;
  signatureAlgorithm: string;
  /** Self-signature checks out with the enclosed key (proof of possession). */
  signatureValid: boolean;
  /** Extensions from the extensionRequest attribute. */
  extensions: Array<Required<ExtensionInput>>;
  subjectAltName?: SubjectAltName & { other: number };
  challengePassword?: string;
  attributes: CsrAttribute[];
}

/**
 * Builds and signs a PKCS#10 request. The CertificationRequestInfo is assembled from DER pieces
 * (like certificates in certificate.ts): the name and SPKI are DER already, and pkijs object trees
 * cost more than the signature. Attributes keep the order challengePassword, extensionRequest.
 */
export async function createCsr(subject: DistinguishedName, signer: Signer, opts: CsrOptions = {}): Promise<Uint8Array> {
  const exts = [...(opts.extensions ?? [])];
  if (opts.subjectAltName) exts.push(subjectAltNameExtension(opts.subjectAltName));
  const attributes: Uint8Array[] = [];
  if (opts.challengePassword !== undefined) {
    if (/\p{Cs}/u.test(opts.challengePassword)) throw new TypeError('challengePassword contains a lone surrogate');
    attributes.push(derSequence(derOid(OID.challengePassword), derTlv(0x31, derTlv(0x0c, Buffer.from(opts.challengePassword, 'utf8')))));
  }
  if (exts.length > 0) attributes.push(derSequence(derOid(OID.extensionRequest), derTlv(0x31, derSequence(...exts.map(extensionDer)))));
  const info = derSequence(
    Uint8Array.of(0x02, 0x01, 0x00), // version 0
    encodeName(subject),
    spkiOfKey(signer.publicKey),
    derTlv(0xa0, ...attributes),
  );
  return signAndAssemble(info, signer);
}

function verifySignature(tbs: Uint8Array, sigOid: string, key: KeyObject, sig: Uint8Array): boolean {
  const hash = SIGNATURE_HASH[sigOid];
  if (!hash) return false;
  const isEc = key.asymmetricKeyType === 'ec';
  if (isEc !== sigOid.startsWith('1.2.840.10045.4.3.')) return false; // algorithm must fit the key type
  try {
    return nodeVerify(hash, tbs, key, sig);
  } catch {
    return false;
  }
}

const BOOLEAN = 1; // not in envelope/der.ts's UNIVERSAL table

/** Named curves read from coordinates: JWK name, OpenSSL name, coordinate length. */
const EC_CURVES: Record<string, { crv: string; openssl: string; n: number }> = {
  [OID.secp256r1]: { crv: 'P-256', openssl: 'prime256v1', n: 32 },
  [OID.secp384r1]: { crv: 'P-384', openssl: 'secp384r1', n: 48 },
  [OID.secp521r1]: { crv: 'P-521', openssl: 'secp521r1', n: 66 },
};

/**
 * Reads the CSR's key and its canonical SPKI: DER, named curve, uncompressed point. Canonical
 * bytes matter: callers compare them byte-wise (the registrar refuses a CSR carrying the IDevID
 * key, which a compressed or BER-framed encoding of the same key must not slip past) and issuance
 * copies them into the certificate.
 *
 * Named-curve EC keys are imported from their coordinates (JWK import skips OpenSSL 3's decoder
 * chain: ~65 instead of ~105 µs; the point is still checked to be on the curve), and a DER-framed
 * uncompressed SPKI is kept as it is (node:crypto's export, ~0.1 ms, would return the same bytes).
 * Anything else (explicit curve parameters, RSA) is decoded from DER and exported once.
 */
function readPublicKey(buf: Uint8Array, spki: Tlv): { key: KeyObject; spki: Uint8Array } {
  const [alg, bits] = children(buf, spki);
  const algParts = alg && isUniversal(alg, UNIVERSAL.sequence) && alg.constructed ? children(buf, alg) : [];
  const bitString = bits && isUniversal(bits, UNIVERSAL.bitString) && !bits.constructed ? contents(buf, bits) : undefined;
  const curveOid = algParts.length === 2 && isUniversal(algParts[0], UNIVERSAL.oid) && oid(buf, algParts[0]!) === OID.ecPublicKey
    && isUniversal(algParts[1], UNIVERSAL.oid) ? oid(buf, algParts[1]!) : undefined;
  const curve = curveOid ? EC_CURVES[curveOid] : undefined;
  try {
    if (curve && bitString && bitString[0] === 0 && bitString.length > 1) {
      const point = bitString.subarray(1);
      const uncompressed = point[0] === 0x04 && point.length === 1 + 2 * curve.n ? point
        : point.length === 1 + curve.n && (point[0] === 0x02 || point[0] === 0x03)
          ? new Uint8Array(ECDH.convertKey(point, curve.openssl, undefined, undefined, 'uncompressed') as Buffer)
          : undefined;
      if (!uncompressed) throw new MalformedError('CSR: EC point of the wrong length or form');
      const x = Buffer.from(uncompressed.subarray(1, 1 + curve.n)).toString('base64url');
      const y = Buffer.from(uncompressed.subarray(1 + curve.n)).toString('base64url');
      const key = createPublicKey({ key: { kty: 'EC', crv: curve.crv, x, y }, format: 'jwk' });
      const received = raw(buf, spki);
      const canonical = uncompressed === point && isStrictDer(buf, spki) ? new Uint8Array(received)
        : derSequence(derSequence(derOid(OID.ecPublicKey), derOid(curveOid!)), derTlv(0x03, Uint8Array.of(0), uncompressed));
      return { key, spki: canonical };
    }
    const key = createPublicKey({ key: Buffer.from(raw(buf, spki)), format: 'der', type: 'spki' });
    return { key, spki: new Uint8Array(key.export({ type: 'spki', format: 'der' })) };
  } catch (e) {
    if (e instanceof MalformedError) throw e;
    throw new MalformedError('CSR: unusable subjectPublicKeyInfo', { cause: e });
  }
}

/** Extensions ::= SEQUENCE OF Extension (duplicates are malformed, RFC 5280 §4.2). */
function readExtensions(buf: Uint8Array, t: Tlv): Array<Required<ExtensionInput>> {
  const out: Array<Required<ExtensionInput>> = [];
  for (const ext of children(buf, expectUniversal(t, UNIVERSAL.sequence, 'Extensions'))) {
    const parts = isUniversal(ext, UNIVERSAL.sequence) && ext.constructed ? children(buf, ext) : [];
    const [id, second, third] = parts;
    let critical = false;
    if (parts.length === 3) {
      const b = contents(buf, expectUniversal(second, BOOLEAN, 'Extension critical'));
      if (b.length !== 1) throw new MalformedError('Extension: malformed critical flag');
      critical = b[0] !== 0;
    }
    const octets = parts.length === 3 ? third : second;
    if (parts.length < 2 || parts.length > 3 || !isUniversal(id, UNIVERSAL.oid) || !isUniversal(octets, UNIVERSAL.octetString)) {
      throw new MalformedError('Extension: malformed');
    }
    const extnId = oid(buf, id!);
    if (out.some((e) => e.oid === extnId)) throw new MalformedError(`Extension ${extnId} appears twice`);
    out.push({ oid: extnId, critical, value: new Uint8Array(octetString(buf, octets!)) });
  }
  return out;
}

/**
 * Parses a DER PKCS#10 request. Structural problems throw MalformedError; a bad signature is
 * reported in `signatureValid`.
 *
 * Read with the TLV reader of envelope/der.ts instead of asn1js (~0.3 ms of object building per
 * CSR on the registrar's enrollment path). Strictness is kept: one complete element, no trailing
 * bytes, every element of the request walked (malformed BER anywhere is refused), exact shapes.
 */
export function parseCsr(der: Uint8Array): ParsedCsr {
  if (der.length === 0) throw new MalformedError('CSR: empty input');
  const top = readTlv(der, 0);
  if (top.end !== der.length) throw new MalformedError(`CSR: ${der.length - top.end} trailing bytes after the DER element`);
  assertWellFormed(der, top);
  const parts = children(der, expectUniversal(top, UNIVERSAL.sequence, 'CSR CertificationRequest'));
  const [info, alg, sig] = parts;
  if (parts.length !== 3 || !isUniversal(info, UNIVERSAL.sequence) || !isUniversal(alg, UNIVERSAL.sequence)
    || !isUniversal(sig, UNIVERSAL.bitString) || sig!.constructed) {
    throw new MalformedError('CSR: SEQUENCE {info, algorithm, signature} expected');
  }
  const algParts = children(der, alg!);
  if (algParts.length < 1 || algParts.length > 2 || !isUniversal(algParts[0], UNIVERSAL.oid)) throw new MalformedError('CSR: signature algorithm OID expected');
  const infoParts = children(der, info!);
  const [version, subject, spki, attrs] = infoParts;
  if (infoParts.length < 3 || infoParts.length > 4) throw new MalformedError('CSR: truncated CertificationRequestInfo');
  if (!isUniversal(version, UNIVERSAL.integer) || smallInteger(der, version!) !== 0) throw new MalformedError('CSR: version 0 expected');
  if (!isUniversal(spki, UNIVERSAL.sequence)) throw new MalformedError('CSR: subjectPublicKeyInfo expected');
  const { key: publicKey, spki: spkiBytes } = readPublicKey(der, spki!);
  const attributes: CsrAttribute[] = [];
  if (attrs) {
    if (!isContext(attrs, 0) || !attrs.constructed) throw new MalformedError('CSR: [0] attributes expected');
    for (const a of children(der, attrs)) {
      const ap = isUniversal(a, UNIVERSAL.sequence) && a.constructed ? children(der, a) : [];
      const [type, values] = ap;
      if (ap.length !== 2 || !isUniversal(type, UNIVERSAL.oid) || !isUniversal(values, UNIVERSAL.set) || !values!.constructed) {
        throw new MalformedError('CSR: malformed attribute');
      }
      attributes.push({ type: oid(der, type!), values: children(der, values!).map((v) => new Uint8Array(raw(der, v))) });
    }
  }
  const sigBits = contents(der, sig!);
  if (sigBits.length < 1 || sigBits[0] !== 0) throw new MalformedError('CSR: signature BIT STRING with unused bits');
  const result: ParsedCsr = {
    der,
    subject: readName(der, subject!),
    subjectDer: new Uint8Array(raw(der, subject!)),
    publicKey,
    spkiDer: spkiBytes,
    signatureAlgorithm: oid(der, algParts[0]!),
    signatureValid: false,
    extensions: [],
    attributes,
  };
  result.signatureValid = verifySignature(raw(der, info!), result.signatureAlgorithm, publicKey, sigBits.subarray(1));
  for (const a of attributes) {
    if (a.type === OID.extensionRequest) {
      if (a.values.length !== 1 || result.extensions.length > 0) throw new MalformedError('CSR: extensionRequest must hold exactly one Extensions value');
      const v = a.values[0]!;
      result.extensions.push(...readExtensions(v, readTlv(v, 0)));
    } else if (a.type === OID.challengePassword) {
      if (a.values.length !== 1) throw new MalformedError('CSR: challengePassword must be one DirectoryString');
      const v = a.values[0]!;
      result.challengePassword = directoryString(v, readTlv(v, 0), 'CSR challengePassword');
    }
  }
  rememberSpki(publicKey, spkiBytes);
  const san = result.extensions.find((e) => e.oid === OID.subjectAltName);
  if (san) {
    try {
      result.subjectAltName = parseSubjectAltName(san.value);
    } catch (e) {
      throw new MalformedError('CSR: malformed subjectAltName', { cause: e });
    }
  }
  return result;
}

/** Parses and checks proof of possession; throws BrskiError('bad-csr') if the self-signature does not verify. */
export function verifyCsr(der: Uint8Array): ParsedCsr {
  const csr = parseCsr(der);
  if (!SIGNATURE_HASH[csr.signatureAlgorithm]) throw new BrskiError('bad-csr', `CSR: unsupported signature algorithm ${csr.signatureAlgorithm}`);
  if (!csr.signatureValid) throw new BrskiError('bad-csr', 'CSR: signature does not verify with the enclosed public key (no proof of possession)');
  return csr;
}

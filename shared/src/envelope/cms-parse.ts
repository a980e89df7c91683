/**
 * Defensive parsing of a CMS SignedData ContentInfo (RFC 5652) into the pieces the voucher
 * verifier needs, on the small TLV reader in der.ts (see there for why not pkijs on this path).
 * Every structural deviation is a MalformedError; the exact bytes that signatures cover (signed
 * attributes, embedded certificates) are slices of the input, never re-encodings.
 */
import { MalformedError } from '../errors.ts';
import {
  children, contents, expectUniversal, isContext, isUniversal, octetString, oid, raw, readTlv, smallInteger,
  UNIVERSAL, type Tlv,
} from './der.ts';

export const OID = {
  signedData: '1.2.840.113549.1.7.2',
  data: '1.2.840.113549.1.7.1',
  animaJsonVoucher: '1.2.840.113549.1.9.16.1.40',
  contentTypeAttr: '1.2.840.113549.1.9.3',
  messageDigestAttr: '1.2.840.113549.1.9.4',
  signingTimeAttr: '1.2.840.113549.1.9.5',
  subjectKeyIdentifier: '2.5.29.14',
} as const;

export type SignerId =
  | { kind: 'issuerAndSerial'; issuer: Uint8Array; serial: Uint8Array }
  | { kind: 'ski'; value: Uint8Array };

export interface CmsAttribute {
  type: string;
  /** DER of each value in the attribute's SET. */
  values: Uint8Array[];
}

export interface ParsedSignerInfo {
  sid: SignerId;
  digestAlgorithm: string;
  signatureAlgorithm: string;
  signature: Uint8Array;
  /** The signed attributes re-tagged as SET (0x31) — the bytes the signature covers. */
  signedAttrsDer: Uint8Array | undefined;
  attributes: CmsAttribute[];
}

export interface ParsedCms {
  version: number;
  eContentType: string;
  content: Uint8Array | undefined;
  /** DER of each embedded X.509 certificate exactly as carried. */
  certificatesDer: Uint8Array[];
  signerInfos: ParsedSignerInfo[];
}

const B64_TEXT = /^[A-Za-z0-9+/=\s]+$/;

/**
 * Accepts DER, or base64 text of the DER (interop leniency: several implementations and the
 * published RFC 8995 examples exchange base64 bodies).
 */
export function decodeCmsInput(bytes: Uint8Array): Uint8Array {
  if (bytes.length > 0 && bytes[0] === 0x30) return bytes;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  if (!B64_TEXT.test(text)) throw new MalformedError('CMS: neither DER nor base64 text');
  const compact = text.replace(/\s+/g, '');
  if (compact.length % 4 === 1 || /=[^=]/.test(compact)) throw new MalformedError('CMS: invalid base64 text');
  const der = new Uint8Array(Buffer.from(compact, 'base64'));
  if (der.length === 0 || der[0] !== 0x30) throw new MalformedError('CMS: base64 text does not hold a DER SEQUENCE');
  return der;
}

function algorithmOid(buf: Uint8Array, t: Tlv | undefined, what: string): string {
  const seq = expectUniversal(t, UNIVERSAL.sequence, what);
  return oid(buf, expectUniversal(children(buf, seq)[0], UNIVERSAL.oid, `${what} OID`));
}

/** Parses a ContentInfo holding SignedData. Throws MalformedError for anything else. */
export function parseCms(der: Uint8Array): ParsedCms {
  const ci = expectUniversal(readTlv(der, 0), UNIVERSAL.sequence, 'ContentInfo SEQUENCE');
  if (ci.end !== der.length) throw new MalformedError('CMS: trailing bytes after ContentInfo');
  const [ctype, explicit, ...restCi] = children(der, ci);
  if (restCi.length > 0) throw new MalformedError('CMS: unexpected ContentInfo members');
  const contentType = oid(der, expectUniversal(ctype, UNIVERSAL.oid, 'ContentInfo contentType'));
  if (contentType !== OID.signedData) throw new MalformedError(`CMS: content type ${contentType} is not SignedData`);
  if (!explicit || !isContext(explicit, 0) || !explicit.constructed) throw new MalformedError('CMS: ContentInfo [0] content missing');
  const inner = children(der, explicit);
  if (inner.length !== 1) throw new MalformedError('CMS: ContentInfo [0] must hold exactly SignedData');
  const sd = children(der, expectUniversal(inner[0], UNIVERSAL.sequence, 'SignedData SEQUENCE'));

  let i = 0;
  const version = smallInteger(der, expectUniversal(sd[i++], UNIVERSAL.integer, 'SignedData version'));
  expectUniversal(sd[i++], UNIVERSAL.set, 'SignedData digestAlgorithms');
  const eci = children(der, expectUniversal(sd[i++], UNIVERSAL.sequence, 'EncapsulatedContentInfo'));
  const eContentType = oid(der, expectUniversal(eci[0], UNIVERSAL.oid, 'eContentType'));
  let content: Uint8Array | undefined;
  if (eci.length > 2) throw new MalformedError('CMS: unexpected EncapsulatedContentInfo members');
  if (eci[1]) {
    if (!isContext(eci[1], 0) || !eci[1].constructed) throw new MalformedError('CMS: eContent must be [0] EXPLICIT');
    const e = children(der, eci[1]);
    if (e.length !== 1) throw new MalformedError('CMS: eContent must hold one OCTET STRING');
    content = Uint8Array.from(octetString(der, e[0]!));
  }
  const certificatesDer: Uint8Array[] = [];
  if (isContext(sd[i], 0)) {
    // CertificateChoices: plain certificates are SEQUENCEs; attribute/other certs are tagged and skipped.
    for (const c of children(der, sd[i++]!)) if (isUniversal(c, UNIVERSAL.sequence)) certificatesDer.push(Uint8Array.from(raw(der, c)));
  }
  if (isContext(sd[i], 1)) i++; // crls: not used
  const signerSet = expectUniversal(sd[i++], UNIVERSAL.set, 'SignedData signerInfos');
  if (i !== sd.length) throw new MalformedError('CMS: unexpected SignedData members');
  const signerInfos = children(der, signerSet).map((si) => parseSignerInfo(der, si));
  return { version, eContentType, content, certificatesDer, signerInfos };
}

function parseSignerInfo(der: Uint8Array, t: Tlv): ParsedSignerInfo {
  const f = children(der, expectUniversal(t, UNIVERSAL.sequence, 'SignerInfo SEQUENCE'));
  let i = 0;
  smallInteger(der, expectUniversal(f[i++], UNIVERSAL.integer, 'SignerInfo version'));
  const sidT = f[i++];
  let sid: SignerId;
  if (!sidT) throw new MalformedError('CMS: SignerIdentifier missing');
  if (isUniversal(sidT, UNIVERSAL.sequence)) {
    const [issuer, serial, ...rest] = children(der, sidT);
    if (rest.length > 0) throw new MalformedError('CMS: bad IssuerAndSerialNumber');
    sid = {
      kind: 'issuerAndSerial',
      issuer: raw(der, expectUniversal(issuer, UNIVERSAL.sequence, 'issuer Name')),
      serial: contents(der, expectUniversal(serial, UNIVERSAL.integer, 'serialNumber')),
    };
  } else if (isContext(sidT, 0) && !sidT.constructed) {
    sid = { kind: 'ski', value: contents(der, sidT) };
  } else {
    throw new MalformedError('CMS: unsupported SignerIdentifier');
  }
  const digestAlgorithm = algorithmOid(der, f[i++], 'digestAlgorithm');
  let signedAttrsDer: Uint8Array | undefined;
  let attributes: CmsAttribute[] = [];
  const sa = f[i];
  if (sa && isContext(sa, 0)) {
    i++;
    if (!sa.constructed) throw new MalformedError('CMS: signedAttrs must be constructed');
    signedAttrsDer = Uint8Array.from(raw(der, sa));
    signedAttrsDer[0] = 0x31; // RFC 5652 §5.4: the signature covers the EXPLICIT SET OF encoding
    attributes = children(der, sa).map((a) => parseAttribute(der, a));
  }
  const signatureAlgorithm = algorithmOid(der, f[i++], 'signatureAlgorithm');
  const signature = Uint8Array.from(contents(der, expectUniversal(f[i++], UNIVERSAL.octetString, 'signature')));
  if (isContext(f[i], 1)) i++; // unsignedAttrs: ignored
  if (i !== f.length) throw new MalformedError('CMS: unexpected SignerInfo members');
  return { sid, digestAlgorithm, signatureAlgorithm, signature, signedAttrsDer, attributes };
}

function parseAttribute(der: Uint8Array, t: Tlv): CmsAttribute {
  const [type, set, ...rest] = children(der, expectUniversal(t, UNIVERSAL.sequence, 'Attribute SEQUENCE'));
  if (rest.length > 0) throw new MalformedError('CMS: bad Attribute');
  const values = children(der, expectUniversal(set, UNIVERSAL.set, 'Attribute values')).map((v) => Uint8Array.from(raw(der, v)));
  return { type: oid(der, expectUniversal(type, UNIVERSAL.oid, 'Attribute type')), values };
}

/** Values of a signed attribute; undefined when absent. */
export function attributeValues(attrs: readonly CmsAttribute[], type: string): Uint8Array[] | undefined {
  const matches = attrs.filter((a) => a.type === type);
  if (matches.length > 1) throw new MalformedError(`CMS: signed attribute ${type} appears more than once`);
  return matches[0]?.values;
}

/** Issuer Name DER, serial INTEGER contents and SKI of a certificate (for SignerIdentifier matching). */
export function certificateIds(der: Uint8Array): { issuer: Uint8Array; serial: Uint8Array; ski: Uint8Array | undefined } {
  const cert = expectUniversal(readTlv(der, 0), UNIVERSAL.sequence, 'Certificate');
  const tbs = children(der, expectUniversal(children(der, cert)[0], UNIVERSAL.sequence, 'TBSCertificate'));
  let i = isContext(tbs[0], 0) ? 1 : 0;
  const serial = contents(der, expectUniversal(tbs[i++], UNIVERSAL.integer, 'serialNumber'));
  i++; // signature algorithm
  const issuer = raw(der, expectUniversal(tbs[i++], UNIVERSAL.sequence, 'issuer'));
  let ski: Uint8Array | undefined;
  const exts = tbs.find((t) => isContext(t, 3));
  if (exts) {
    for (const ext of children(der, expectUniversal(children(der, exts)[0], UNIVERSAL.sequence, 'Extensions'))) {
      const parts = children(der, ext);
      if (oid(der, expectUniversal(parts[0], UNIVERSAL.oid, 'extnID')) !== OID.subjectKeyIdentifier) continue;
      const value = octetString(der, parts[parts.length - 1]!);
      ski = octetString(value, readTlv(value, 0));
    }
  }
  return { issuer, serial, ski };
}

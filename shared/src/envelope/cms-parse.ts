/**
 * Defensive parsing of a CMS SignedData ContentInfo (RFC 5652) into the pieces the voucher
 * verifier needs. pkijs checks the structure against the ASN.1 schema; the exact bytes that
 * signatures cover (signed attributes, embedded certificates) are taken from the original
 * encoding, never from a re-encoding.
 */
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { MalformedError } from '../errors.ts';
import { toBytes } from './types.ts';

export const OID = {
  signedData: '1.2.840.113549.1.7.2',
  data: '1.2.840.113549.1.7.1',
  animaJsonVoucher: '1.2.840.113549.1.9.16.1.40',
  contentTypeAttr: '1.2.840.113549.1.9.3',
  messageDigestAttr: '1.2.840.113549.1.9.4',
  signingTimeAttr: '1.2.840.113549.1.9.5',
  subjectKeyIdentifier: '2.5.29.14',
} as const;

export interface ParsedSignerInfo {
  sid: { kind: 'issuerAndSerial'; value: pkijs.IssuerAndSerialNumber } | { kind: 'ski'; value: Uint8Array };
  digestAlgorithm: string;
  signatureAlgorithm: string;
  signature: Uint8Array;
  /** DER of the signed attributes re-tagged as SET (0x31) — the bytes the signature covers. */
  signedAttrsDer: Uint8Array | undefined;
  attributes: pkijs.Attribute[];
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

/** Parses a ContentInfo holding SignedData. Throws MalformedError for anything else. */
export function parseCms(der: Uint8Array): ParsedCms {
  let asn1: ReturnType<typeof asn1js.fromBER>;
  try {
    asn1 = asn1js.fromBER(der);
  } catch (e) {
    // e.g. RangeError on absurd nesting: still just bad input
    throw new MalformedError('CMS: ASN.1 parse error', { cause: e });
  }
  if (asn1.offset === -1) throw new MalformedError(`CMS: ASN.1 parse error: ${asn1.result.error || 'invalid encoding'}`);
  if (asn1.offset !== der.byteLength) throw new MalformedError('CMS: trailing bytes after ContentInfo');
  let contentInfo: pkijs.ContentInfo;
  let signedData: pkijs.SignedData;
  try {
    contentInfo = new pkijs.ContentInfo({ schema: asn1.result });
  } catch (e) {
    throw new MalformedError('CMS: not a ContentInfo', { cause: e });
  }
  if (contentInfo.contentType !== OID.signedData) {
    throw new MalformedError(`CMS: content type ${contentInfo.contentType} is not SignedData`);
  }
  try {
    signedData = new pkijs.SignedData({ schema: contentInfo.content });
  } catch (e) {
    throw new MalformedError('CMS: malformed SignedData', { cause: e });
  }
  const eci = signedData.encapContentInfo;
  let content: Uint8Array | undefined;
  if (eci.eContent) {
    const e = eci.eContent;
    if (!(e instanceof asn1js.OctetString)) throw new MalformedError('CMS: eContent is not an OCTET STRING');
    // getValue() joins the segments of a constructed (BER) OCTET STRING as well.
    content = toBytes(e.getValue()).slice();
  }
  return {
    version: signedData.version,
    eContentType: eci.eContentType,
    content,
    certificatesDer: rawCertificates(asn1.result),
    signerInfos: signedData.signerInfos.map(parseSignerInfo),
  };
}

function parseSignerInfo(si: pkijs.SignerInfo): ParsedSignerInfo {
  let sid: ParsedSignerInfo['sid'];
  if (si.sid instanceof pkijs.IssuerAndSerialNumber) {
    sid = { kind: 'issuerAndSerial', value: si.sid };
  } else if (si.sid instanceof asn1js.BaseBlock && si.sid.idBlock.tagClass === 3 && si.sid.idBlock.tagNumber === 0) {
    // [0] SubjectKeyIdentifier (IMPLICIT OCTET STRING); pkijs keeps it as a raw primitive.
    const block = si.sid as asn1js.Primitive;
    sid = { kind: 'ski', value: toBytes(block.valueBlock.valueHexView).slice() };
  } else {
    throw new MalformedError('CMS: unsupported SignerIdentifier');
  }
  const sigHex = si.signature.valueBlock.valueHexView;
  let signedAttrsDer: Uint8Array | undefined;
  let attributes: pkijs.Attribute[] = [];
  if (si.signedAttrs) {
    // pkijs stores the original bytes with the [0] tag already replaced by SET (0x31).
    signedAttrsDer = toBytes(si.signedAttrs.encodedValue).slice();
    if (signedAttrsDer.length === 0 || signedAttrsDer[0] !== 0x31) throw new MalformedError('CMS: signed attributes not encoded');
    attributes = si.signedAttrs.attributes;
  }
  return {
    sid,
    digestAlgorithm: si.digestAlgorithm.algorithmId,
    signatureAlgorithm: si.signatureAlgorithm.algorithmId,
    signature: toBytes(sigHex).slice(),
    signedAttrsDer,
    attributes,
  };
}

/**
 * The embedded certificates' original DER: ContentInfo → [0] → SignedData → [0] IMPLICIT SET.
 * Only plain X.509 certificates (universal SEQUENCE) are returned; attribute certs are skipped.
 */
function rawCertificates(contentInfo: asn1js.AsnType): Uint8Array[] {
  const ci = contentInfo as asn1js.Sequence;
  const explicit = ci.valueBlock.value[1] as asn1js.Constructed | undefined;
  const sd = explicit?.valueBlock.value[0] as asn1js.Sequence | undefined;
  if (!sd) return [];
  const out: Uint8Array[] = [];
  for (const child of sd.valueBlock.value) {
    if (child.idBlock.tagClass === 3 && child.idBlock.tagNumber === 0 && child.idBlock.isConstructed) {
      for (const c of (child as asn1js.Constructed).valueBlock.value) {
        if (c.idBlock.tagClass === 1 && c.idBlock.tagNumber === 16) out.push(toBytes(c.valueBeforeDecodeView).slice());
      }
    }
  }
  return out;
}

/** Values of a signed attribute; undefined when absent. */
export function attributeValues(attrs: readonly pkijs.Attribute[], oid: string): unknown[] | undefined {
  const matches = attrs.filter((a) => a.type === oid);
  if (matches.length > 1) throw new MalformedError(`CMS: signed attribute ${oid} appears more than once`);
  return matches[0]?.values;
}

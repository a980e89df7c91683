/**
 * CMS SignedData envelope for `application/voucher-cms+json` (RFC 5652, RFC 8366bis §6.1,
 * digest §6.1): DER ContentInfo, SignedData v3, eContentType id-ct-animaJSONVoucher, attached
 * JSON content, one SignerInfo with signed attributes (contentType, signingTime, messageDigest).
 *
 * Signing goes through the Signer interface only (never a raw private key) so that a PKCS#11
 * key works the same way. Neither direction uses pkijs: signing assembles DER pieces, verification
 * reads the TLVs it needs (cms-parse.ts) and uses node:crypto and pki/chain.ts.
 */
import { createHash, verify as nodeVerify, type X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import { p1363ToDer } from '../crypto/ecdsa.ts';
import { ALGORITHM_INFO, type Signer } from '../crypto/signer.ts';
import { MalformedError, SignatureError } from '../errors.ts';
import {
  attributeValues, certificateIds, decodeCmsInput, OID, parseCms, type ParsedCms, type ParsedSignerInfo,
} from './cms-parse.ts';
import { contents, isUniversal, oid, readTlv, UNIVERSAL } from './der.ts';
import {
  checkSize, parseCertificate, validateSignerChain,
  type InspectedEnvelope, type VerifiedEnvelope, type VerifyOptions,
} from './types.ts';

export { decodeCmsInput } from './cms-parse.ts';
export const ID_CT_ANIMA_JSON_VOUCHER = OID.animaJsonVoucher;
export const ID_DATA = OID.data;

export interface SignCmsOptions {
  /** 'anima' (default): id-ct-animaJSONVoucher; 'data': id-data, for peers that only know the old examples. */
  contentType?: 'anima' | 'data';
  /**
   * Certificates to embed instead of `signer.certificates` (e.g. the chain including the anchor,
   * digest §6.1). The signer certificate is always embedded, first.
   */
  includeCertificates?: readonly X509Certificate[];
  /**
   * Leave out the `certificates` field (RFC 5652 makes it optional; digest §6.1 only SHOULD include
   * the chain): for peers that pre-store the signer, and for testing that a verifier handles it.
   */
  omitCertificates?: boolean;
  /** signingTime attribute (default now). */
  signingTime?: Date;
}

export interface VerifyCmsOptions extends VerifyOptions {
  /** Accept eContentType id-data (every published example uses it); default true, with a warning. */
  acceptIdData?: boolean;
}

export interface VerifiedCms extends VerifiedEnvelope {
  /** signingTime signed attribute, when present (pledges with a trusted clock check it, digest §12 #11). */
  signingTime?: Date;
}

const HASH_BY_OID: Record<string, 'sha256' | 'sha384' | 'sha512'> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** Signature algorithms we verify → the hash they imply (undefined: take the digestAlgorithm). */
const SIG_ALGS: Record<string, 'sha256' | 'sha384' | 'sha512' | undefined> = {
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10045.2.1': undefined, // id-ecPublicKey (seen in the wild instead of ecdsa-with-…)
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption (RSA IDevIDs exist)
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.113549.1.1.1': undefined, // rsaEncryption
};

// ---- signing ----------------------------------------------------------------------------------

export async function signCms(payload: Uint8Array, signer: Signer, opts: SignCmsOptions = {}): Promise<Uint8Array> {
  const signerCert = signer.certificates[0];
  if (!signerCert) throw new TypeError('signCms: the signer has no certificate (needed for the SignerIdentifier)');
  const info = ALGORITHM_INFO[signer.algorithm];
  const idData = opts.contentType === 'data';
  const eContentType = oidDer(idData ? OID.data : OID.animaJsonVoucher);
  const digest = createHash(info.hash).update(payload).digest();

  // Assembled from DER pieces rather than pkijs objects: building and re-encoding the pkijs
  // SignedData was 40% of a CMS voucher issuance. Attribute ::= SEQUENCE { type, SET OF value }.
  const attributes = [
    derTlv(0x30, oidDer(OID.contentTypeAttr), derTlv(0x31, eContentType)),
    derTlv(0x30, oidDer(OID.signingTimeAttr), derTlv(0x31, timeDer(opts.signingTime ?? new Date()))),
    derTlv(0x30, oidDer(OID.messageDigestAttr), derTlv(0x31, derTlv(0x04, digest))),
  ].sort(Buffer.compare); // DER SET OF: ascending order of the encodings (X.690 §11.6)
  // The signature covers the attributes as a SET OF (tag 0x31), RFC 5652 §5.4; they travel as [0] IMPLICIT.
  const signature = p1363ToDer(await signer.sign(derTlv(0x31, ...attributes)));

  const ids = idsOf(signerCert);
  if (!ids) throw new TypeError('signCms: the signer certificate cannot be parsed');
  const signerInfo = derTlv(0x30,
    INTEGER_1,
    derTlv(0x30, ids.issuer, derTlv(0x02, ids.serial)), // sid: IssuerAndSerialNumber
    derTlv(0x30, oidDer(info.hashOid)), // digestAlgorithm (parameters absent)
    derTlv(0xa0, ...attributes),
    derTlv(0x30, oidDer(info.sigOid)), // signatureAlgorithm (parameters absent, RFC 5758 §3.2)
    derTlv(0x04, signature));
  // Certificates are carried exactly as issued, signer first.
  const certs = opts.omitCertificates ? [] : dedupe([signerCert, ...(opts.includeCertificates ?? signer.certificates)]);
  const signedData = derTlv(0x30,
    idData ? INTEGER_1 : INTEGER_3, // RFC 5652 §5.1: 3 when eContentType is not id-data
    derTlv(0x31, derTlv(0x30, oidDer(info.hashOid))), // digestAlgorithms
    derTlv(0x30, eContentType, derTlv(0xa0, derTlv(0x04, payload))), // encapContentInfo, eContent [0] EXPLICIT
    ...(certs.length > 0 ? [derTlv(0xa0, ...certs.map((c) => new Uint8Array(c.raw)))] : []), // certificates [0] IMPLICIT
    derTlv(0x31, signerInfo));
  // ContentInfo ::= SEQUENCE { id-signedData, [0] EXPLICIT SignedData }
  return derTlv(0x30, oidDer(OID.signedData), derTlv(0xa0, signedData));
}

const INTEGER_1 = Uint8Array.of(0x02, 0x01, 0x01);
const INTEGER_3 = Uint8Array.of(0x02, 0x01, 0x03);

const oidCache = new Map<string, Uint8Array>();
function oidDer(value: string): Uint8Array {
  let d = oidCache.get(value);
  if (!d) { d = new Uint8Array(new asn1js.ObjectIdentifier({ value }).toBER(false)); oidCache.set(value, d); }
  return d;
}

/** DER tag-length-value with definite length. */
function derTlv(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const lenBytes: number[] = [];
  if (len < 0x80) lenBytes.push(len);
  else {
    for (let l = len; l > 0; l = Math.floor(l / 256)) lenBytes.unshift(l & 0xff);
    lenBytes.unshift(0x80 | lenBytes.length);
  }
  const out = Buffer.concat([Uint8Array.of(tag, ...lenBytes), ...parts]);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength); // a plain Uint8Array, not a Buffer
}

/** RFC 5652 §11.3: UTCTime for 1950–2049, GeneralizedTime otherwise; whole seconds, Z. */
function timeDer(d: Date): Uint8Array {
  const seconds = new Date(Math.floor(d.getTime() / 1000) * 1000);
  const y = seconds.getUTCFullYear();
  const digits = seconds.toISOString().slice(0, 19).replace(/[-T:]/g, ''); // YYYYMMDDHHMMSS
  if (y >= 1950 && y < 2050) return derTlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'latin1'));
  if (y < 0 || y > 9999) throw new TypeError(`signingTime ${d.toISOString()} cannot be encoded`);
  return derTlv(0x18, Buffer.from(`${digits}Z`, 'latin1'));
}

function dedupe(certs: readonly X509Certificate[]): X509Certificate[] {
  const seen = new Set<string>();
  return certs.filter((c) => (seen.has(c.fingerprint256) ? false : (seen.add(c.fingerprint256), true)));
}

// ---- parsing / verification -------------------------------------------------------------------

function parseInput(bytes: Uint8Array, maxBytes: number | undefined): ParsedCms {
  checkSize(bytes, maxBytes);
  return parseCms(decodeCmsInput(bytes));
}

function embeddedCertificates(parsed: ParsedCms): X509Certificate[] {
  return parsed.certificatesDer.map((der, i) => parseCertificate(der, `CMS certificate #${i}`));
}

/** Parse only: payload and embedded certificates. NO signature or chain verification. */
export function inspectCms(bytes: Uint8Array, opts: { maxBytes?: number } = {}): InspectedEnvelope {
  const parsed = parseInput(bytes, opts.maxBytes);
  if (!parsed.content) throw new MalformedError('CMS: detached content is not supported for vouchers');
  return { format: 'cms', payload: parsed.content, embedded: embeddedCertificates(parsed) };
}

export async function verifyCms(bytes: Uint8Array, opts: VerifyCmsOptions): Promise<VerifiedCms> {
  return verifyCmsSync(bytes, opts);
}

/** Synchronous core of verifyCms (all checks are CPU-bound). */
export function verifyCmsSync(bytes: Uint8Array, opts: VerifyCmsOptions): VerifiedCms {
  const parsed = parseInput(bytes, opts.maxBytes);
  const warnings: string[] = [];
  if (parsed.eContentType === OID.data) {
    if (opts.acceptIdData === false) throw new MalformedError('CMS: eContentType id-data is not accepted (id-ct-animaJSONVoucher required)');
    warnings.push('id-data eContentType (id-ct-animaJSONVoucher expected)');
  } else if (parsed.eContentType !== OID.animaJsonVoucher) {
    throw new MalformedError(`CMS: unexpected eContentType ${parsed.eContentType}`);
  }
  if (parsed.version !== 3) warnings.push(`SignedData version ${parsed.version} (3 expected)`);
  const content = parsed.content;
  if (!content) throw new MalformedError('CMS: detached content is not supported for vouchers');
  if (parsed.signerInfos.length !== 1) throw new MalformedError(`CMS: exactly one SignerInfo expected, found ${parsed.signerInfos.length}`);
  const si = parsed.signerInfos[0]!;
  if (!si.signedAttrsDer) throw new MalformedError('CMS: SignedAttributes missing (required for vouchers)');

  const hash = HASH_BY_OID[si.digestAlgorithm];
  if (!hash) throw new MalformedError(`CMS: unsupported digest algorithm ${si.digestAlgorithm}`);
  checkSignedAttributes(si, parsed.eContentType, createHash(hash).update(content).digest());
  const signingTime = readSigningTime(si);

  const embedded = embeddedCertificates(parsed);
  const candidates = opts.signerCertificate ? [opts.signerCertificate, ...embedded] : embedded;
  const signer = findSigner(si, candidates);
  if (!signer) throw new SignatureError('CMS: the signer certificate named by the SignerInfo is not available');
  if (!(si.signatureAlgorithm in SIG_ALGS)) throw new SignatureError(`CMS: unsupported signature algorithm ${si.signatureAlgorithm}`);
  const sigHash = SIG_ALGS[si.signatureAlgorithm] ?? hash;
  let ok = false;
  try {
    ok = nodeVerify(sigHash, si.signedAttrsDer, { key: signer.publicKey, dsaEncoding: 'der' }, si.signature);
  } catch (e) {
    throw new SignatureError('CMS: signature cannot be checked with the signer key', { cause: e });
  }
  if (!ok) throw new SignatureError('CMS: signature does not verify');

  const chain = validateSignerChain(signer, embedded, opts);
  const result: VerifiedCms = { format: 'cms', payload: content, signer, chain, embedded, warnings };
  if (signingTime) result.signingTime = signingTime;
  return result;
}

function checkSignedAttributes(si: ParsedSignerInfo, eContentType: string, digest: Buffer): void {
  const ct = attributeValues(si.attributes, OID.contentTypeAttr);
  // RFC 5652 §11.1: content-type MUST be present in signed attributes and match eContentType.
  if (!ct || ct.length !== 1) throw new MalformedError('CMS: content-type signed attribute missing or malformed');
  if (oid(ct[0]!, readTlv(ct[0]!, 0)) !== eContentType) throw new SignatureError('CMS: content-type attribute does not match eContentType');
  const md = attributeValues(si.attributes, OID.messageDigestAttr);
  if (!md || md.length !== 1) throw new MalformedError('CMS: message-digest signed attribute missing or malformed');
  const mdTlv = readTlv(md[0]!, 0);
  if (!isUniversal(mdTlv, UNIVERSAL.octetString) || mdTlv.constructed) throw new MalformedError('CMS: message-digest attribute malformed');
  if (!digest.equals(contents(md[0]!, mdTlv))) throw new SignatureError('CMS: message digest does not match the content');
}

function readSigningTime(si: ParsedSignerInfo): Date | undefined {
  const st = attributeValues(si.attributes, OID.signingTimeAttr);
  if (!st) return undefined;
  const parsed = st.length === 1 ? asn1js.fromBER(st[0]!) : undefined;
  const v = parsed && parsed.offset === st[0]!.length ? parsed.result : undefined;
  if (!(v instanceof asn1js.UTCTime || v instanceof asn1js.GeneralizedTime)) throw new MalformedError('CMS: signing-time attribute malformed');
  const d = v.toDate();
  if (Number.isNaN(d.getTime())) throw new MalformedError('CMS: signing-time attribute malformed');
  return d;
}

// Certificates recur (the same registrar/MASA/pledge CAs): cache their identifiers by fingerprint.
const ID_CACHE_MAX = 1024;
const idCache = new Map<string, ReturnType<typeof certificateIds> | null>();

function idsOf(cert: X509Certificate): ReturnType<typeof certificateIds> | null {
  const key = cert.fingerprint256;
  let ids = idCache.get(key);
  if (ids === undefined) {
    try { ids = certificateIds(new Uint8Array(cert.raw)); } catch { ids = null; }
    idCache.set(key, ids);
    if (idCache.size > ID_CACHE_MAX) idCache.delete(idCache.keys().next().value!);
  }
  return ids;
}

/** The candidate named by the SignerIdentifier (issuerAndSerialNumber or subjectKeyIdentifier). */
function findSigner(si: ParsedSignerInfo, candidates: readonly X509Certificate[]): X509Certificate | undefined {
  const sid = si.sid;
  return candidates.find((cert) => {
    const ids = idsOf(cert);
    if (!ids) return false;
    return sid.kind === 'issuerAndSerial'
      ? Buffer.from(ids.serial).equals(sid.serial) && Buffer.from(ids.issuer).equals(sid.issuer)
      : ids.ski !== undefined && Buffer.from(ids.ski).equals(sid.value);
  });
}

/**
 * CMS SignedData envelope for `application/voucher-cms+json` (RFC 5652, RFC 8366bis §6.1,
 * digest §6.1): DER ContentInfo, SignedData v3, eContentType id-ct-animaJSONVoucher, attached
 * JSON content, one SignerInfo with signed attributes (contentType, signingTime, messageDigest).
 *
 * Signing goes through the Signer interface only (never a raw private key) so that a PKCS#11
 * key works the same way. Verification uses node:crypto and pki/chain.ts, not pkijs' verifier.
 */
import { createHash, verify as nodeVerify, X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { p1363ToDer } from '../crypto/ecdsa.ts';
import { ALGORITHM_INFO, type Signer } from '../crypto/signer.ts';
import { MalformedError, SignatureError } from '../errors.ts';
import {
  attributeValues, certificateIds, decodeCmsInput, OID, parseCms, type ParsedCms, type ParsedSignerInfo,
} from './cms-parse.ts';
import { children, contents, isUniversal, oid, readTlv, UNIVERSAL } from './der.ts';
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
  const eContentType = opts.contentType === 'data' ? OID.data : OID.animaJsonVoucher;
  const digest = createHash(info.hash).update(payload).digest();

  const attributes = sortDer([
    new pkijs.Attribute({ type: OID.contentTypeAttr, values: [new asn1js.ObjectIdentifier({ value: eContentType })] }),
    new pkijs.Attribute({ type: OID.signingTimeAttr, values: [timeValue(opts.signingTime ?? new Date())] }),
    new pkijs.Attribute({ type: OID.messageDigestAttr, values: [new asn1js.OctetString({ valueHex: digest })] }),
  ]);
  // The signature covers the DER of the attributes as a SET OF (tag 0x31), RFC 5652 §5.4.
  const attrsSet = new Uint8Array(new asn1js.Set({ value: attributes.map((a) => a.toSchema()) }).toBER(false));
  const signature = p1363ToDer(await signer.sign(attrsSet));

  const ids = certificateIds(new Uint8Array(signerCert.raw));
  // Assigned after construction: the EncapsulatedContentInfo constructor would split eContent
  // into a constructed (BER, non-DER) OCTET STRING.
  const eci = new pkijs.EncapsulatedContentInfo({ eContentType });
  eci.eContent = new asn1js.OctetString({ valueHex: toArrayBuffer(payload) });

  const signedData = new pkijs.SignedData({
    version: 3,
    digestAlgorithms: [new pkijs.AlgorithmIdentifier({ algorithmId: info.hashOid })],
    encapContentInfo: eci,
    signerInfos: [new pkijs.SignerInfo({
      version: 1,
      sid: new pkijs.IssuerAndSerialNumber({
        issuer: new pkijs.RelativeDistinguishedNames({ schema: asn1js.fromBER(ids.issuer).result }),
        serialNumber: new asn1js.Integer({ valueHex: toArrayBuffer(ids.serial) }),
      }),
      digestAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: info.hashOid }),
      signedAttrs: new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes }),
      signatureAlgorithm: new pkijs.AlgorithmIdentifier({ algorithmId: info.sigOid }),
      signature: new asn1js.OctetString({ valueHex: toArrayBuffer(signature) }),
    })],
  });
  const certs = dedupe([signerCert, ...(opts.includeCertificates ?? signer.certificates)]);
  const sd = withCertificates(new Uint8Array(signedData.toSchema(true).toBER(false)), certs);
  // ContentInfo ::= SEQUENCE { id-signedData, [0] EXPLICIT SignedData }
  return derTlv(0x30, SIGNED_DATA_OID_DER, derTlv(0xa0, sd));
}

const SIGNED_DATA_OID_DER = new Uint8Array(new asn1js.ObjectIdentifier({ value: OID.signedData }).toBER(false));

/**
 * Inserts `certificates [0] IMPLICIT CertificateSet` into an encoded SignedData, right before
 * signerInfos. Done on bytes so the certificates are carried exactly as issued (pkijs would
 * re-encode them, and re-parsing each one costs more than the whole rest of the signature).
 */
function withCertificates(sd: Uint8Array, certs: readonly X509Certificate[]): Uint8Array {
  if (certs.length === 0) return sd;
  const fields = children(sd, readTlv(sd, 0));
  const signerInfos = fields[fields.length - 1]!;
  const head = fields.slice(0, -1).map((f) => sd.subarray(f.start, f.end));
  const set = derTlv(0xa0, ...certs.map((c) => new Uint8Array(c.raw)));
  return derTlv(0x30, ...head, set, sd.subarray(signerInfos.start, signerInfos.end));
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

/** RFC 5652 §11.3: UTCTime for 1950–2049, GeneralizedTime otherwise. */
function timeValue(d: Date): asn1js.UTCTime | asn1js.GeneralizedTime {
  const seconds = new Date(Math.floor(d.getTime() / 1000) * 1000);
  const y = seconds.getUTCFullYear();
  return y >= 1950 && y < 2050 ? new asn1js.UTCTime({ valueDate: seconds }) : new asn1js.GeneralizedTime({ valueDate: seconds });
}

/** DER SET OF: elements in ascending order of their encodings (X.690 §11.6). */
function sortDer(attrs: pkijs.Attribute[]): pkijs.Attribute[] {
  const enc = attrs.map((a) => ({ a, der: Buffer.from(a.toSchema().toBER(false)) }));
  enc.sort((x, y) => Buffer.compare(x.der, y.der));
  return enc.map((e) => e.a);
}

function dedupe(certs: readonly X509Certificate[]): X509Certificate[] {
  const seen = new Set<string>();
  return certs.filter((c) => (seen.has(c.fingerprint256) ? false : (seen.add(c.fingerprint256), true)));
}

function toArrayBuffer(u: Uint8Array): ArrayBuffer {
  return u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) as ArrayBuffer;
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

/**
 * Certificate issuance. The TBSCertificate is assembled from DER pieces (names and extension
 * values encoded with asn1js/pkijs in extensions.ts); the signature always comes from a `Signer`
 * (software key or HSM), and the final DER wraps the exact TBS bytes that were signed.
 * Profile helpers for every certificate the stack issues live in profiles.ts.
 */
import { randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import * as pkijs from 'pkijs';
import { p1363ToDer } from '../crypto/ecdsa.ts';
import { ALGORITHM_INFO, type Signer } from '../crypto/signer.ts';
import { bytesEqual, derBitString, derOctetString, derOid, derSequence, derTlv, parseDer, spkiOfKey } from './der.ts';
import {
  authorityKeyIdExtension, basicConstraintsExtension, encodeName, extKeyUsageExtension, keyUsageExtension, masaUrlExtension,
  subjectAltNameExtension, subjectKeyIdExtension,
  type DistinguishedName, type ExtensionInput, type KeyUsageName, type SubjectAltName,
} from './extensions.ts';
import { certificateInfo, keyIdentifierFromSpki, keyIdentifierOf } from './identity.ts';
import { OID } from './oids.ts';

export * from './extensions.ts';
export * from './profiles.ts';

/** 9999-12-31T23:59:59Z: "no well-defined expiration" (RFC 5280 §4.1.2.5, IEEE 802.1AR IDevIDs). */
export const NO_EXPIRY = new Date(Date.UTC(9999, 11, 31, 23, 59, 59));

export interface CertificateProfile {
  subject: DistinguishedName;
  publicKey: KeyObject;
  /** Default: now minus 5 minutes (clock skew between issuer and relying parties). */
  notBefore?: Date;
  /** A date, or `'forever'` for 99991231235959Z. */
  notAfter: Date | 'forever';
  /** Certificate serial (positive, ≤ 20 bytes). Default: 16 random bytes. */
  serialNumber?: Uint8Array;
  /** Present ⇒ CA certificate (basicConstraints cA=TRUE, critical). */
  ca?: { pathLength?: number };
  keyUsage?: readonly KeyUsageName[];
  extendedKeyUsage?: readonly string[];
  subjectAltName?: SubjectAltName;
  masaUrl?: string;
  extraExtensions?: readonly ExtensionInput[];
}

export interface Issuer {
  signer: Signer;
  /** The issuing CA certificate; absent ⇒ self-signed (signer key must be the subject key). */
  certificate?: X509Certificate;
}

/** Unique positive serial: 16 random bytes, top bit clear and first octet non-zero so the DER is exactly 16 bytes. */
export function randomSerial(): Uint8Array {
  const s = new Uint8Array(randomBytes(16));
  s[0] = (s[0]! & 0x7f) || 0x01;
  return s;
}

const V3 = Uint8Array.of(0xa0, 0x03, 0x02, 0x01, 0x02); // [0] EXPLICIT INTEGER 2
const TRUE = Uint8Array.of(0x01, 0x01, 0xff);

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds, Z. */
export function timeDer(d: Date): Uint8Array {
  const iso = new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = d.getUTCFullYear();
  if (year < 1950 || year > 9999) throw new TypeError(`date ${iso} outside the X.509 range`);
  return year < 2050 ? derTlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'latin1')) : derTlv(0x18, Buffer.from(`${digits}Z`, 'latin1'));
}

/** DER OBJECT IDENTIFIER (cached); kept under this name for existing callers. */
export const oidDer = derOid;

/** DER Extension: SEQUENCE { extnID, critical TRUE only when set (DEFAULT FALSE), extnValue }. */
export function extensionDer(e: ExtensionInput): Uint8Array {
  return e.critical ? derSequence(oidDer(e.oid), TRUE, derOctetString(e.value)) : derSequence(oidDer(e.oid), derOctetString(e.value));
}

/** DER AlgorithmIdentifier of the signer's ECDSA algorithm (no parameters). */
export function signatureAlgorithmDer(signer: Signer): Uint8Array {
  return derSequence(oidDer(ALGORITHM_INFO[signer.algorithm].sigOid));
}

export function nameFromDer(der: Uint8Array): pkijs.RelativeDistinguishedNames {
  return new pkijs.RelativeDistinguishedNames({ schema: parseDer(der, 'Name') });
}

/** AlgorithmIdentifier for the signer's ECDSA algorithm (parameters absent, RFC 5758 §3.2). */
export function signatureAlgorithmOf(signer: Signer): pkijs.AlgorithmIdentifier {
  return new pkijs.AlgorithmIdentifier({ algorithmId: ALGORITHM_INFO[signer.algorithm].sigOid });
}

/** Signs `tbs` and returns the complete `SEQUENCE { tbs, algorithm, BIT STRING sig }` (certificate, CRL, CSR shape). */
export async function signAndAssemble(tbs: Uint8Array, signer: Signer): Promise<Uint8Array> {
  const sig = p1363ToDer(await signer.sign(tbs));
  return derSequence(tbs, signatureAlgorithmDer(signer), derBitString(sig));
}

const signerSpki = new WeakMap<Signer, Uint8Array>();
function spkiOfSigner(signer: Signer): Uint8Array {
  let s = signerSpki.get(signer);
  if (!s) { s = spkiOfKey(signer.publicKey); signerSpki.set(signer, s); }
  return s;
}

function buildExtensions(profile: CertificateProfile, subjectSpki: Uint8Array, issuerKeyId: Uint8Array | undefined): ExtensionInput[] {
  const exts: ExtensionInput[] = [];
  if (profile.ca) exts.push(basicConstraintsExtension(true, profile.ca.pathLength));
  if (profile.keyUsage?.length) exts.push(keyUsageExtension(profile.keyUsage));
  if (profile.extendedKeyUsage?.length) exts.push(extKeyUsageExtension(profile.extendedKeyUsage));
  exts.push(subjectKeyIdExtension(keyIdentifierFromSpki(subjectSpki)));
  if (issuerKeyId) exts.push(authorityKeyIdExtension(issuerKeyId));
  if (profile.subjectAltName) exts.push(subjectAltNameExtension(profile.subjectAltName));
  if (profile.masaUrl !== undefined) exts.push(masaUrlExtension(profile.masaUrl));
  exts.push(...(profile.extraExtensions ?? []));
  const seen = new Set<string>();
  for (const e of exts) {
    if (seen.has(e.oid)) throw new TypeError(`extension ${e.oid} given twice`);
    seen.add(e.oid);
  }
  return exts;
}

/**
 * Issues a certificate for `profile`, signed by `issuer.signer`. SKI always; AKI (the issuer's SKI,
 * else its method-1 key id) when issued by a CA. The issuer certificate must be a CA whose key is
 * the signer's key, so we never emit a certificate that cannot verify.
 */
export async function issueCertificate(profile: CertificateProfile, issuer: Issuer): Promise<X509Certificate> {
  // A key from parseCsr carries its SPKI bytes already (spkiOfKey): no OpenSSL export per issuance.
  const subjectSpki = spkiOfKey(profile.publicKey);
  let issuerNameDer: Uint8Array;
  let issuerKeyId: Uint8Array | undefined;
  if (issuer.certificate) {
    const info = certificateInfo(issuer.certificate);
    if (!info.isCa) throw new TypeError(`issuer ${issuer.certificate.subject} is not a CA certificate`);
    if (!bytesEqual(info.spkiDer, spkiOfSigner(issuer.signer))) throw new TypeError('issuer signer key does not match the issuer certificate');
    issuerNameDer = info.subjectDer;
    issuerKeyId = info.subjectKeyId ?? keyIdentifierOf(issuer.certificate);
  } else {
    if (!bytesEqual(subjectSpki, spkiOfSigner(issuer.signer))) throw new TypeError('self-signed certificate: signer key differs from the subject key');
    issuerNameDer = encodeName(profile.subject);
  }
  const notBefore = profile.notBefore ?? new Date(Date.now() - 5 * 60_000);
  const notAfter = profile.notAfter === 'forever' ? NO_EXPIRY : profile.notAfter;
  if (!(notAfter.getTime() > notBefore.getTime())) throw new TypeError('notAfter must be later than notBefore');
  const serial = profile.serialNumber ?? randomSerial();
  if (serial.length === 0 || serial.length > 20 || (serial[0]! & 0x80) !== 0) throw new TypeError('serial must be a positive integer of at most 20 octets');

  // TBSCertificate assembled from DER pieces: the names and SPKI are already DER, and going
  // through pkijs objects here would re-parse them (issuance is a hot path for fleet generation).
  const exts = buildExtensions(profile, subjectSpki, issuer.certificate ? issuerKeyId : undefined);
  const tbs = derSequence(
    V3,
    derTlv(0x02, serial),
    signatureAlgorithmDer(issuer.signer),
    issuerNameDer,
    derSequence(timeDer(notBefore), timeDer(notAfter)),
    encodeName(profile.subject),
    subjectSpki,
    derTlv(0xa3, derSequence(...exts.map(extensionDer))),
  );
  return new X509Certificate(Buffer.from(await signAndAssemble(tbs, issuer.signer)));
}

export { OID };

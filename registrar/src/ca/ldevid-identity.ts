/**
 * LDevID identity rules for the domain CA: the CRL distribution point put into issued
 * certificates, and the re-enrollment identity check (RFC 7030 §4.2.2, digest §4): a
 * simplereenroll CSR's Subject and subjectAltName must be identical to those of the certificate
 * being renewed. The CA sets the identity itself, so a CSR may also leave them out (empty subject,
 * no SAN); what it may not do is ask for a different one. ChangeSubjectName (RFC 6402) is not
 * supported: an LDevID's identity only changes through a new onboarding.
 */
import type { X509Certificate } from 'node:crypto';
import { BrskiError } from '@brski/shared/errors';
import { derSequence, derTlv } from '@brski/shared/pki/der';
import { encodeName, parseSubjectAltName, type DistinguishedName, type ExtensionInput } from '@brski/shared/pki/extensions';
import { certificateInfo } from '@brski/shared/pki/identity';
import { OID } from '@brski/shared/pki/oids';
import type { ParsedCsr } from '@brski/shared/pki/csr';

const CRL_DISTRIBUTION_POINTS = '2.5.29.31';
const CHANGE_SUBJECT_NAME = '1.3.6.1.5.5.7.7.36'; // id-cmc-changeSubjectName

/**
 * cRLDistributionPoints with one DistributionPoint whose fullName is the URI (RFC 5280 §4.2.1.13):
 * SEQUENCE { SEQUENCE { [0] { [0] { [6] uri } } } } — distributionPoint [0] is explicit (it tags a
 * CHOICE), fullName [0] implicitly tags GeneralNames. Assembled from DER pieces like the shared
 * extension encoders (extensions.ts), which have no CRL DP encoder.
 */
export function crlDistributionPointExtension(url: string): ExtensionInput {
  if (!/^[\x21-\x7e]+$/.test(url)) throw new TypeError(`CRL distribution URL "${url}" must be printable ASCII without spaces`);
  const uri = derTlv(0x86, Buffer.from(url, 'latin1'));
  return { oid: CRL_DISTRIBUTION_POINTS, critical: false, value: derSequence(derSequence(derTlv(0xa0, derTlv(0xa0, uri)))) };
}

function describe(dn: ReadonlyArray<readonly [string, string]>): string {
  return dn.length === 0 ? '(empty)' : dn.map(([k, v]) => `${k}=${v}`).join(', ');
}

function sameNames(a: ReadonlyArray<readonly [string, string]>, b: ReadonlyArray<readonly [string, string]>): boolean {
  return a.length === b.length && a.every(([k, v], i) => k === b[i]![0] && v === b[i]![1]);
}

function sortedSan(value: Uint8Array): string | undefined {
  const s = parseSubjectAltName(value);
  if (s.other > 0) return undefined; // other name forms: only byte equality can tell
  return JSON.stringify([(s.dns ?? []).map((d) => d.toLowerCase()).sort(), [...(s.ip ?? [])].sort(), [...(s.uri ?? [])].sort()]);
}

/** Throws bad-csr unless the CSR asks for the current certificate's identity or leaves it to the CA. */
export function assertReenrollIdentity(csr: ParsedCsr, current: X509Certificate): void {
  if (csr.attributes.some((a) => a.type === CHANGE_SUBJECT_NAME)) {
    throw new BrskiError('bad-csr', 'simplereenroll: ChangeSubjectName is not supported; the LDevID identity is fixed until the device onboards again');
  }
  const info = certificateInfo(current);
  if (csr.subject.length > 0 && !sameNames(csr.subject, info.subject) && !Buffer.from(csr.subjectDer).equals(Buffer.from(info.subjectDer))) {
    throw new BrskiError('bad-csr', `simplereenroll: CSR subject "${describe(csr.subject)}" differs from the current LDevID subject "${describe(info.subject)}" (RFC 7030 §4.2.2: it must be identical, or empty)`);
  }
  const want = csr.extensions.find((e) => e.oid === OID.subjectAltName);
  if (!want) return;
  const have = info.extensions.get(OID.subjectAltName);
  if (!have) throw new BrskiError('bad-csr', 'simplereenroll: CSR asks for a subjectAltName; the current LDevID has none');
  if (Buffer.from(want.value).equals(Buffer.from(have.value))) return;
  const a = sortedSan(want.value);
  if (a === undefined || a !== sortedSan(have.value)) {
    throw new BrskiError('bad-csr', 'simplereenroll: CSR subjectAltName differs from the current LDevID subjectAltName (RFC 7030 §4.2.2: it must be identical, or absent)');
  }
}

/** The identity a renewal carries: the current certificate's subject and subjectAltName, unchanged. */
export function currentIdentity(current: X509Certificate): { subject: DistinguishedName; san?: ExtensionInput } {
  const info = certificateInfo(current);
  // Our own encoder re-creates the name; refuse rather than issue a renewal whose bytes drifted.
  if (!Buffer.from(encodeName(info.subject)).equals(Buffer.from(info.subjectDer))) {
    throw new BrskiError('internal', `cannot reproduce the subject of LDevID ${current.serialNumber} byte for byte`);
  }
  const san = info.extensions.get(OID.subjectAltName);
  return { subject: info.subject, ...(san ? { san: { oid: OID.subjectAltName, critical: san.critical, value: san.value } } : {}) };
}

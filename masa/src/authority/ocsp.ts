/**
 * OCSP (RFC 6960, with the RFC 5019 lightweight profile) for the registrar's RVR signing chain,
 * where a certificate names an OCSP responder in its AIA (digest §2.1(d)3: "If revocation info
 * (CRLDP/OCSP) is present in that chain, MASA MUST be able to check it").
 *
 * The request is one SHA-1 CertID (RFC 5019 §2.1.1), sent with GET (RFC 6960 A.1, base64 in the
 * path; RFC 5019 §5) through the same bounded, SSRF-guarded fetcher as CRLs, so it needs no second
 * HTTP client. No nonce: RFC 5019 responders pre-produce responses, freshness comes from
 * thisUpdate/nextUpdate. The response is parsed on the DER reader (pkijs would re-encode the signed
 * part) and accepted only when signed by the certificate's issuer itself or by a responder
 * certificate that issuer delegated (id-kp-OCSPSigning, RFC 6960 §4.2.2.2).
 */
import { createHash, verify as nodeVerify, X509Certificate } from 'node:crypto';
import { MalformedError } from '@brski/shared/errors';
import { children, contents, isContext, isUniversal, oid as oidOf, raw, readTlv, UNIVERSAL, type Tlv } from '@brski/shared/envelope/der';
import { bytesEqual, derOctetString, derOid, derSequence, derTlv } from '@brski/shared/pki/der';
import { certificateInfo } from '@brski/shared/pki/identity';
import { SIGNATURE_HASH } from '@brski/shared/pki/oids';

const SHA1 = '1.3.14.3.2.26';
const BASIC_RESPONSE = '1.3.6.1.5.5.7.48.1.1';
const OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';

export type OcspStatus = { status: 'good' | 'unknown'; thisUpdate: Date; nextUpdate?: Date }
  | { status: 'revoked'; thisUpdate: Date; nextUpdate?: Date; revokedAt: Date; reason?: number };

/** CertID (SHA-1) of `cert` as issued by `issuer`. */
export function certId(cert: X509Certificate, issuer: X509Certificate): Uint8Array {
  const sha1 = (b: Uint8Array) => new Uint8Array(createHash('sha1').update(b).digest());
  const iss = certificateInfo(issuer);
  return derSequence(
    derSequence(derOid(SHA1), Uint8Array.of(0x05, 0x00)),
    derOctetString(sha1(iss.subjectDer)),
    derOctetString(sha1(iss.subjectPublicKey)),
    serialInteger(certificateInfo(cert).serialHex),
  );
}

/** OCSPRequest with one Request for `cert` (no requestor name, no extensions). */
export function ocspRequest(cert: X509Certificate, issuer: X509Certificate): Uint8Array {
  return derSequence(derSequence(derSequence(derSequence(certId(cert, issuer)))));
}

/** RFC 6960 A.1: GET {url}/{url-encoding of base64 of the DER request}. */
export function ocspGetUrl(base: string, request: Uint8Array): string {
  return `${base.replace(/\/+$/, '')}/${encodeURIComponent(Buffer.from(request).toString('base64'))}`;
}

function serialInteger(hex: string): Uint8Array {
  let bytes = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  while (bytes.length > 1 && bytes[0] === 0 && (bytes[1]! & 0x80) === 0) bytes = bytes.subarray(1);
  if (bytes[0]! & 0x80) bytes = Buffer.concat([Buffer.of(0), bytes]);
  return derTlv(0x02, bytes);
}

const GENERALIZED = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.\d+)?Z$/;
function generalizedTime(buf: Uint8Array, t: Tlv | undefined, what: string): Date {
  if (!t || !isUniversal(t, UNIVERSAL.generalizedTime)) throw new MalformedError(`OCSP: ${what}: GeneralizedTime expected`);
  const m = GENERALIZED.exec(Buffer.from(contents(buf, t)).toString('latin1'));
  if (!m) throw new MalformedError(`OCSP: ${what}: not a UTC GeneralizedTime`);
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s));
}

/**
 * The status of `cert` from a DER OCSPResponse, after checking who signed it. Throws Error (with a
 * reason fit for logs) when the response is unusable: not successful, malformed, no answer for this
 * certificate, or not signed by the issuer or its delegated responder.
 */
export function parseOcspResponse(der: Uint8Array, cert: X509Certificate, issuer: X509Certificate, at: Date): OcspStatus {
  const top = readTlv(der, 0);
  if (!isUniversal(top, UNIVERSAL.sequence) || top.end !== der.length) throw new MalformedError('OCSP: OCSPResponse SEQUENCE expected');
  const [status, bytes] = children(der, top);
  if (!status || status.tag !== 10 || status.cls !== 0) throw new MalformedError('OCSP: responseStatus expected');
  const code = contents(der, status)[0];
  if (code !== 0) throw new Error(`OCSP responder answered status ${code} (${['successful', 'malformedRequest', 'internalError', 'tryLater', '', 'sigRequired', 'unauthorized'][code ?? 4] ?? 'unknown'})`);
  if (!bytes || !isContext(bytes, 0)) throw new MalformedError('OCSP: responseBytes expected');
  const [rb] = children(der, bytes);
  const [type, octets] = rb ? children(der, rb) : [];
  if (!type || oidOf(der, type) !== BASIC_RESPONSE || !octets || !isUniversal(octets, UNIVERSAL.octetString)) {
    throw new MalformedError('OCSP: only id-pkix-ocsp-basic responses are supported');
  }
  const basic = contents(der, octets);
  const b = readTlv(basic, 0);
  const [tbs, sigAlg, sig, certsWrap] = children(basic, b);
  if (!tbs || !sigAlg || !sig || !isUniversal(sig, UNIVERSAL.bitString)) throw new MalformedError('OCSP: BasicOCSPResponse malformed');
  const hash = SIGNATURE_HASH[oidOf(basic, children(basic, sigAlg)[0]!)];
  if (!hash) throw new Error('OCSP: unsupported signature algorithm');
  const signature = contents(basic, sig).subarray(1);
  const tbsBytes = raw(basic, tbs);
  const carried = certsWrap && isContext(certsWrap, 0)
    ? children(basic, children(basic, certsWrap)[0]!).map((c) => new X509Certificate(Buffer.from(raw(basic, c)))) : [];
  const signedBy = (c: X509Certificate) => { try { return nodeVerify(hash, tbsBytes, c.publicKey, signature); } catch { return false; } };
  // The issuer itself, or a responder it delegated to (issued by it, OCSPSigning, valid now).
  const delegate = carried.find((c) => c.checkIssued(issuer) && c.verify(issuer.publicKey) && (c.keyUsage ?? []).includes(OCSP_SIGNING)
    && Date.parse(c.validFrom) <= at.getTime() && at.getTime() <= Date.parse(c.validTo));
  if (!signedBy(issuer) && !(delegate && signedBy(delegate))) throw new Error('OCSP response is not signed by the issuer or a responder it authorised');

  // ResponseData: [0] version?, responderID, producedAt, responses, [1] extensions?
  const parts = children(basic, tbs);
  const responses = parts.find((p, i) => i > 0 && isUniversal(p, UNIVERSAL.sequence) && isUniversal(parts[i - 1], UNIVERSAL.generalizedTime));
  if (!responses) throw new MalformedError('OCSP: responses expected');
  const wanted = certId(cert, issuer);
  for (const single of children(basic, responses)) {
    const [id, certStatus, thisUpdateT, ...rest] = children(basic, single);
    if (!id || !certStatus || !bytesEqual(raw(basic, id), wanted)) continue;
    const thisUpdate = generalizedTime(basic, thisUpdateT, 'thisUpdate');
    const next = rest.find((r) => isContext(r, 0));
    const nextUpdate = next ? generalizedTime(basic, children(basic, next)[0], 'nextUpdate') : undefined;
    const window = { thisUpdate, ...(nextUpdate ? { nextUpdate } : {}) };
    if (certStatus.cls !== 2) throw new MalformedError('OCSP: certStatus expected');
    if (certStatus.tag === 0) return { status: 'good', ...window };
    if (certStatus.tag === 2) return { status: 'unknown', ...window };
    if (certStatus.tag === 1) {
      const [when, reasonWrap] = children(basic, certStatus);
      const reasonT = reasonWrap && isContext(reasonWrap, 0) ? children(basic, reasonWrap)[0] : undefined;
      return { status: 'revoked', ...window, revokedAt: generalizedTime(basic, when, 'revocationTime'),
        ...(reasonT ? { reason: contents(basic, reasonT)[0]! } : {}) };
    }
    throw new MalformedError('OCSP: unknown certStatus');
  }
  throw new Error('OCSP response has no answer for this certificate');
}

/**
 * Revocation of the registrar's RVR signing chain (digest §2.1(d)3, §12 MASA 1: "If revocation info
 * (CRLDP/OCSP) is present in that chain, MASA MUST be able to check it").
 *
 * For every certificate of [registrar, …, top) that names a CRL distribution point, the CRL is
 * fetched (crl-fetch.ts), checked (issuer name + signature by the next certificate of the chain,
 * which must be allowed to sign CRLs; thisUpdate not in the future; nextUpdate not passed) and
 * cached until nextUpdate. A listed certificate is refused 403 `certificate-revoked` whatever the
 * mode. A certificate naming no usable CRL, or whose CRLs cannot be had, is asked about over OCSP
 * when it names a responder (ocsp-check.ts); revoked there is the same 403. When the status cannot
 * be established (fetch failure, bad or stale CRL or OCSP answer, responder says "unknown"),
 * `require` refuses 503 `revocation-unavailable` (fail closed) and `best-effort` logs and accepts. The chain top is the temporary anchor and is not checked against
 * a CRL of its own. Not handled: indirect CRLs (cRLIssuer), delta CRLs, issuingDistributionPoint
 * scoping — a point with cRLIssuer counts as unusable.
 */
import type { X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { BrskiError } from '@brski/shared/errors';
import type { Logger } from '@brski/shared/observability/logger';
import type { Metrics } from '@brski/shared/observability/metrics';
import { isRevokedIn, parseCrl, verifyCrlSignature, type ParsedCrl } from '@brski/shared/pki/crl';
import { normalizeSerialHex } from '@brski/shared/pki/der';
import { certificateInfo } from '@brski/shared/pki/identity';
import type { Counter } from 'prom-client';
import { RememberedLoads, Unavailable } from './remembered-loads.ts';
import { createCrlFetcher, type CrlFetcher } from './crl-fetch.ts';
import { OcspChecker } from './ocsp-check.ts';

export type RevocationMode = 'require' | 'best-effort';

export interface RevocationConfig {
  mode: RevocationMode;
  fetchTimeoutMs: number;
  maxCrlBytes: number;
  /** Retry-After of the 503, and how long a failed fetch is remembered (no fetch storm while a CRL server is down). */
  retryAfterSeconds: number;
  /** Cache lifetime of a CRL without nextUpdate. */
  cacheSecondsWithoutNextUpdate: number;
  allowPrivateAddresses: boolean;
}

const OID_CRLDP = '2.5.29.31';
const OID_AIA = '1.3.6.1.5.5.7.1.1';
const OID_OCSP = '1.3.6.1.5.5.7.48.1';
const OID_KEY_USAGE = '2.5.29.15';
const GENERAL_NAME_URI = 6;
/** thisUpdate up to this far ahead of our clock is tolerated (CA clock skew). */
const THIS_UPDATE_SKEW_MS = 5 * 60_000;

export interface RevocationPointers { crlUrls: string[]; unusablePoints: number; ocspUrls: string[] }

/** Parsed once per certificate object: the same registrar chain arrives with every request. */
const pointerCache = new WeakMap<X509Certificate, RevocationPointers>();

/** CRL URLs (http/https full names of points without cRLIssuer) and OCSP URLs named by `cert`. */
export function revocationPointers(cert: X509Certificate): RevocationPointers {
  let p = pointerCache.get(cert);
  if (!p) { p = parsePointers(cert); pointerCache.set(cert, p); }
  return p;
}

function parsePointers(cert: X509Certificate): RevocationPointers {
  const exts = certificateInfo(cert).extensions;
  if (!exts.has(OID_CRLDP) && !exts.has(OID_AIA)) return { crlUrls: [], unusablePoints: 0, ocspUrls: [] };
  const out: RevocationPointers = { crlUrls: [], unusablePoints: 0, ocspUrls: [] };
  const uris = (names: pkijs.GeneralName[]): string[] => names.filter((n) => n.type === GENERAL_NAME_URI).map((n) => String(n.value));
  const parse = <T>(oid: string, make: (schema: asn1js.AsnType) => T): T | undefined => {
    const e = exts.get(oid);
    if (!e) return undefined;
    const asn = asn1js.fromBER(e.value);
    if (asn.offset === -1) throw new BrskiError('malformed', `certificate ${cert.subject.replace(/\n/g, ', ')}: extension ${oid} is not DER`);
    try { return make(asn.result); } catch {
      throw new BrskiError('malformed', `certificate ${cert.subject.replace(/\n/g, ', ')}: extension ${oid} is malformed`);
    }
  };
  const dps = parse(OID_CRLDP, (schema) => new pkijs.CRLDistributionPoints({ schema }));
  for (const dp of dps?.distributionPoints ?? []) {
    const urls = Array.isArray(dp.distributionPoint) && !dp.cRLIssuer
      ? uris(dp.distributionPoint).filter((u) => /^https?:\/\//i.test(u)) : [];
    if (urls.length === 0) out.unusablePoints++;
    out.crlUrls.push(...urls);
  }
  const aia = parse(OID_AIA, (schema) => new pkijs.InfoAccess({ schema }));
  for (const ad of aia?.accessDescriptions ?? []) {
    if (ad.accessMethod === OID_OCSP && ad.accessLocation.type === GENERAL_NAME_URI) out.ocspUrls.push(String(ad.accessLocation.value));
  }
  return out;
}

/** keyUsage absent, or present with cRLSign (bit 6). */
function maySignCrls(issuer: X509Certificate): boolean {
  const ku = certificateInfo(issuer).extensions.get(OID_KEY_USAGE);
  if (!ku) return true;
  // BIT STRING: 03 len unusedBits b0 …; cRLSign is bit 6 of the first octet.
  return ku.value[0] === 0x03 && ku.value.length >= 4 && (ku.value[3]! & 0x02) !== 0;
}


const subjectOf = (c: X509Certificate): string => c.subject.replace(/\n/g, ', ');

export class RevocationChecker {
  readonly #cfg: RevocationConfig;
  readonly #fetch: CrlFetcher;
  readonly #logger: Logger;
  readonly #fetches: Counter<'result'> | undefined;
  readonly #crls: RememberedLoads<ParsedCrl>;
  readonly #ocsp: OcspChecker;

  constructor(cfg: RevocationConfig, logger: Logger, metrics?: Metrics, fetcher?: CrlFetcher) {
    this.#cfg = cfg;
    this.#logger = logger;
    this.#fetch = fetcher ?? createCrlFetcher({ timeoutMs: cfg.fetchTimeoutMs, maxBytes: cfg.maxCrlBytes,
      allowPrivateAddresses: cfg.allowPrivateAddresses });
    this.#crls = new RememberedLoads(cfg.retryAfterSeconds * 1000);
    this.#fetches = metrics?.counter('masa_crl_fetches_total', 'CRL fetches for registrar chains', ['result']);
    this.#ocsp = new OcspChecker({ retryAfterSeconds: cfg.retryAfterSeconds, cacheSecondsWithoutNextUpdate: cfg.cacheSecondsWithoutNextUpdate,
      skewMs: THIS_UPDATE_SKEW_MS }, this.#fetch, metrics?.counter('masa_ocsp_queries_total', 'OCSP queries for registrar chains', ['result']));
  }

  /**
   * Throws certificate-revoked (403) or, in require mode, revocation-unavailable (503). Returns the
   * earliest nextUpdate of the CRLs and OCSP answers it relied on (undefined: none had one), which
   * bounds a nonceless voucher's expires-on (digest §5.3, "and any CRL lifetime").
   */
  async check(chain: readonly X509Certificate[], at: Date): Promise<Date | undefined> {
    let until: Date | undefined;
    const bound = (d: Date | undefined): void => { if (d && (!until || d < until)) until = d; };
    for (let i = 0; i + 1 < chain.length; i++) {
      const cert = chain[i]!;
      const issuer = chain[i + 1]!;
      const p = revocationPointers(cert);
      if (p.crlUrls.length === 0) {
        if (p.ocspUrls.length > 0) bound(await this.#checkOcsp(cert, issuer, p.ocspUrls, at));
        else if (p.unusablePoints > 0) this.#unknown(cert, 'its CRL distribution points name no usable http(s) CRL (LDAP / indirect CRL)', false);
        continue;
      }
      let crl: ParsedCrl | undefined;
      const errors: string[] = [];
      for (const url of p.crlUrls) {
        try { crl = await this.#crlFor(url, issuer, at); break; } catch (e) {
          if (!(e instanceof Unavailable)) throw e;
          errors.push(`${url}: ${e.message}`);
        }
      }
      if (!crl) {
        if (p.ocspUrls.length > 0) bound(await this.#checkOcsp(cert, issuer, p.ocspUrls, at, errors));
        else this.#unknown(cert, errors.join('; '), true);
        continue;
      }
      if (isRevokedIn(crl, cert)) {
        const entry = crl.revoked.get(normalizeSerialHex(certificateInfo(cert).serialHex));
        throw new BrskiError('certificate-revoked', `certificate ${subjectOf(cert)} of the voucher-request signing chain is revoked`
          + (entry?.reason ? ` (${entry.reason})` : ''), { detail: { subject: subjectOf(cert), serial: cert.serialNumber,
          ...(entry ? { revokedAt: entry.revokedAt.toISOString(), reason: entry.reason } : {}) } });
      }
      bound(crl.nextUpdate);
    }
    return until;
  }

  /** OCSP answer for `cert`: revoked → 403; unknown or unavailable → #unknown. Returns the answer's nextUpdate. */
  async #checkOcsp(cert: X509Certificate, issuer: X509Certificate, urls: readonly string[], at: Date,
    crlErrors: string[] = []): Promise<Date | undefined> {
    let status;
    try { status = await this.#ocsp.status(cert, issuer, urls, at); } catch (e) {
      if (!(e instanceof Unavailable)) throw e;
      this.#unknown(cert, [...crlErrors, `OCSP: ${e.message}`].join('; '), true);
      return undefined;
    }
    if (status.status === 'unknown') { this.#unknown(cert, 'the OCSP responder does not know this certificate', false); return undefined; }
    if (status.status === 'revoked') {
      throw new BrskiError('certificate-revoked', `certificate ${subjectOf(cert)} of the voucher-request signing chain is revoked (OCSP)`,
        { detail: { subject: subjectOf(cert), serial: cert.serialNumber, revokedAt: status.revokedAt.toISOString(),
          ...(status.reason === undefined ? {} : { reasonCode: status.reason }) } });
    }
    return status.nextUpdate;
  }

  /** Status unknown: refuse (require) or log and go on (best-effort). */
  #unknown(cert: X509Certificate, why: string, retryable: boolean): void {
    const detail = { subject: subjectOf(cert), serial: cert.serialNumber, why };
    if (this.#cfg.mode === 'best-effort') {
      this.#logger.warn({ ...detail, mode: 'best-effort' }, 'revocation status unknown, request accepted');
      return;
    }
    throw new BrskiError('revocation-unavailable', `revocation status of ${subjectOf(cert)} cannot be established: ${why}`,
      { detail, ...(retryable ? { retryAfter: this.#cfg.retryAfterSeconds } : {}) });
  }

  /** A verified, current CRL from `url` issued by `issuer` (cached), or Unavailable. */
  #crlFor(url: string, issuer: X509Certificate, at: Date): Promise<ParsedCrl> {
    const now = at.getTime();
    return this.#crls.get(`${url}|${issuer.fingerprint256}`, now, () => this.#load(url, issuer, at),
      (crl) => (crl.nextUpdate ? crl.nextUpdate.getTime() : now + this.#cfg.cacheSecondsWithoutNextUpdate * 1000));
  }

  async #load(url: string, issuer: X509Certificate, at: Date): Promise<ParsedCrl> {
    let der: Uint8Array;
    try { der = await this.#fetch(url); } catch (e) {
      this.#fetches?.inc({ result: 'unreachable' });
      throw e;
    }
    const bad = (why: string): never => {
      this.#fetches?.inc({ result: 'invalid' });
      throw new Error(why);
    };
    let crl: ParsedCrl;
    try { crl = parseCrl(der); } catch { return bad('the response is not a DER CRL'); }
    if (!verifyCrlSignature(crl, issuer)) bad(`the CRL is not signed by ${subjectOf(issuer)}`);
    if (!maySignCrls(issuer)) bad(`${subjectOf(issuer)} lacks keyUsage cRLSign`);
    if (crl.thisUpdate.getTime() > at.getTime() + THIS_UPDATE_SKEW_MS) bad(`the CRL's thisUpdate ${crl.thisUpdate.toISOString()} is in the future`);
    if (crl.nextUpdate && crl.nextUpdate.getTime() <= at.getTime()) bad(`the CRL expired at ${crl.nextUpdate.toISOString()} (nextUpdate)`);
    this.#fetches?.inc({ result: 'ok' });
    this.#logger.info({ url, issuer: subjectOf(issuer), entries: crl.revoked.size, nextUpdate: crl.nextUpdate?.toISOString() }, 'CRL loaded');
    return crl;
  }
}

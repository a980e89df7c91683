/**
 * OCSP status of one certificate of the registrar's chain (ocsp.ts does the wire format): asked of
 * each responder the certificate names until one gives a usable answer, through the bounded CRL
 * fetcher (crl-fetch.ts: no redirects, size cap, timeout, no private destinations unless allowed).
 * A usable answer is signed by the issuer or its delegated responder, has thisUpdate not in the
 * future and nextUpdate not passed; it is cached until nextUpdate (or `cacheSecondsWithoutNextUpdate`
 * after thisUpdate when it has none). Failures are remembered for `retryAfterSeconds`, so a
 * responder that is down is not asked again by every request.
 */
import type { X509Certificate } from 'node:crypto';
import type { Counter } from 'prom-client';
import { RememberedLoads } from './remembered-loads.ts';
import type { CrlFetcher } from './crl-fetch.ts';
import { ocspGetUrl, ocspRequest, parseOcspResponse, type OcspStatus } from './ocsp.ts';

export interface OcspCheckConfig {
  retryAfterSeconds: number;
  cacheSecondsWithoutNextUpdate: number;
  /** thisUpdate up to this far ahead of our clock is tolerated (responder clock skew). */
  skewMs: number;
}


export class OcspChecker {
  readonly #cfg: OcspCheckConfig;
  readonly #fetch: CrlFetcher;
  readonly #queries: Counter<'result'> | undefined;
  readonly #answers: RememberedLoads<OcspStatus>;

  constructor(cfg: OcspCheckConfig, fetch: CrlFetcher, queries?: Counter<'result'>) {
    this.#cfg = cfg;
    this.#fetch = fetch;
    this.#queries = queries;
    this.#answers = new RememberedLoads(cfg.retryAfterSeconds * 1000);
  }

  /** Throws Unavailable when no responder gave a usable answer. */
  status(cert: X509Certificate, issuer: X509Certificate, urls: readonly string[], at: Date): Promise<OcspStatus> {
    return this.#answers.get(`${cert.fingerprint256}|${issuer.fingerprint256}`, at.getTime(), () => this.#ask(cert, issuer, urls, at),
      (s) => (s.nextUpdate ? s.nextUpdate.getTime() : s.thisUpdate.getTime() + this.#cfg.cacheSecondsWithoutNextUpdate * 1000));
  }

  async #ask(cert: X509Certificate, issuer: X509Certificate, urls: readonly string[], at: Date): Promise<OcspStatus> {
    const request = ocspRequest(cert, issuer);
    const errors: string[] = [];
    for (const url of urls) {
      if (!/^https?:\/\//i.test(url)) { errors.push(`${url}: not an http(s) responder`); continue; }
      let der: Uint8Array;
      try { der = await this.#fetch(ocspGetUrl(url, request)); } catch (e) {
        this.#queries?.inc({ result: 'unreachable' });
        errors.push(`${url}: ${(e as Error).message}`);
        continue;
      }
      try {
        const status = parseOcspResponse(der, cert, issuer, at);
        const t = at.getTime();
        if (status.thisUpdate.getTime() > t + this.#cfg.skewMs) throw new Error(`thisUpdate ${status.thisUpdate.toISOString()} is in the future`);
        if (status.nextUpdate && status.nextUpdate.getTime() <= t) throw new Error(`the response expired at ${status.nextUpdate.toISOString()} (nextUpdate)`);
        if (!status.nextUpdate && status.thisUpdate.getTime() + this.#cfg.cacheSecondsWithoutNextUpdate * 1000 <= t) {
          throw new Error(`the response (thisUpdate ${status.thisUpdate.toISOString()}, no nextUpdate) is too old`);
        }
        this.#queries?.inc({ result: status.status });
        return status;
      } catch (e) {
        this.#queries?.inc({ result: 'invalid' });
        errors.push(`${url}: ${(e as Error).message}`);
      }
    }
    throw new Error(errors.join('; ') || 'no OCSP responder');
  }
}

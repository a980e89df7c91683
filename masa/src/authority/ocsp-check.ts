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
import { remember } from './bounded-map.ts';
import type { CrlFetcher } from './crl-fetch.ts';
import { ocspGetUrl, ocspRequest, parseOcspResponse, type OcspStatus } from './ocsp.ts';

export interface OcspCheckConfig {
  retryAfterSeconds: number;
  cacheSecondsWithoutNextUpdate: number;
  /** thisUpdate up to this far ahead of our clock is tolerated (responder clock skew). */
  skewMs: number;
}

/** No usable answer from any responder (the reasons, for logs and the 503 text). */
export class OcspUnavailable extends Error {}

export class OcspChecker {
  readonly #cfg: OcspCheckConfig;
  readonly #fetch: CrlFetcher;
  readonly #queries: Counter<'result'> | undefined;
  readonly #good = new Map<string, { status: OcspStatus; until: number }>();
  readonly #failed = new Map<string, { until: number; why: string }>();
  readonly #inflight = new Map<string, Promise<OcspStatus>>();

  constructor(cfg: OcspCheckConfig, fetch: CrlFetcher, queries?: Counter<'result'>) {
    this.#cfg = cfg;
    this.#fetch = fetch;
    this.#queries = queries;
  }

  /** Throws OcspUnavailable when no responder gave a usable answer. */
  async status(cert: X509Certificate, issuer: X509Certificate, urls: readonly string[], at: Date): Promise<OcspStatus> {
    const key = `${cert.fingerprint256}|${issuer.fingerprint256}`;
    const now = at.getTime();
    const hit = this.#good.get(key);
    if (hit && hit.until > now) return hit.status;
    const failed = this.#failed.get(key);
    if (failed && failed.until > now) throw new OcspUnavailable(`${failed.why} (remembered)`);
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#ask(cert, issuer, urls, at).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    try {
      const status = await p;
      const until = status.nextUpdate ? status.nextUpdate.getTime() : status.thisUpdate.getTime() + this.#cfg.cacheSecondsWithoutNextUpdate * 1000;
      remember(this.#good, key, { status, until });
      this.#failed.delete(key);
      return status;
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      remember(this.#failed, key, { until: now + this.#cfg.retryAfterSeconds * 1000, why });
      throw new OcspUnavailable(why);
    }
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

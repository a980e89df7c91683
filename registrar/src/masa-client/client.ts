/**
 * HTTPS client to MASAs (digest §8.2, §8.5): TLS >= 1.2 with SNI and DNS-ID checking (node's
 * checkServerIdentity against the URL host), mutual TLS with the registrar certificate, one
 * keep-alive agent per MASA origin + trust configuration, a per-attempt timeout and bounded
 * retries of transient failures. MASA refusals are mapped to typed errors (digest §3.3).
 */
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { BrskiError } from '@brski/shared/errors';
import { parseRetryAfter } from '@brski/shared/http/retry-after';
import { VOUCHER_MEDIA_TYPE, formatFromMediaType, type VoucherFormat } from '@brski/shared/media';

export { parseRetryAfter };

export interface MasaTlsOptions {
  /** PEM trust anchors for the MASA's server certificate; undefined = the system roots. */
  anchors?: string[];
}

export interface MasaClientOptions {
  /** Registrar TLS client identity (PEM key + certificate chain). */
  clientKey: string | Buffer;
  clientCert: string | Buffer;
  timeoutMs: number;
  /** Attempts per call (transient failures only). */
  attempts: number;
  /** Largest MASA response accepted. */
  maxResponseBytes?: number;
}

export interface MasaResponse {
  status: number;
  contentType: string;
  body: Uint8Array;
  location?: string;
  /** The MASA's Retry-After in seconds, when it sent a usable one. */
  retryAfter?: number;
}

/**
 * A failure that may succeed later (network, timeout, 5xx, 429, 202 "not yet"): the caller answers
 * 202 and retries. `retryAfter` on the error carries the MASA's own wait when it gave one.
 */
export function isTransient(err: unknown): boolean {
  return err instanceof BrskiError && (err.code === 'upstream-unavailable' || err.code === 'upstream-timeout');
}

/**
 * A 3xx from the MASA: an invalid answer (502) that says nothing about the device, so it must not
 * be remembered as a refusal; the pledge's identical retry asks the MASA again.
 */
export function isMasaRedirect(err: unknown): boolean {
  const status = err instanceof BrskiError && err.code === 'upstream-invalid' ? err.detail?.['masaStatus'] : undefined;
  return typeof status === 'number' && status >= 300 && status < 400;
}

/** Maps a MASA 4xx answer to what the pledge is told (digest §3.3). */
export function mapMasaRefusal(status: number, text: string, retryAfter?: number): BrskiError {
  const detail = { masaStatus: status, masaMessage: text.slice(0, 300) };
  const msg = `MASA refused the voucher request (${status}${text ? `: ${text.slice(0, 200)}` : ''})`;
  switch (status) {
    case 403: return new BrskiError('forbidden', msg, { detail });
    case 404: return new BrskiError('unknown-device', msg, { detail });
    case 406: case 415: return new BrskiError('not-acceptable', msg, { detail });
    case 429: return new BrskiError('upstream-unavailable', msg, { detail, ...(retryAfter === undefined ? {} : { retryAfter }) });
    // 401 and other 4xx mean the registrar <-> MASA relationship is broken: not the pledge's fault.
    default: return new BrskiError('upstream-invalid', msg, { detail });
  }
}

export class MasaClient {
  readonly #opts: MasaClientOptions;
  readonly #agents = new Map<string, https.Agent>();

  constructor(opts: MasaClientOptions) { this.#opts = opts; }

  #agent(url: URL, tls: MasaTlsOptions): https.Agent {
    const key = `${url.origin}|${(tls.anchors ?? []).join('')}`;
    let agent = this.#agents.get(key);
    if (!agent) {
      agent = new https.Agent({
        keepAlive: true,
        maxSockets: 32,
        minVersion: 'TLSv1.2',
        key: this.#opts.clientKey,
        cert: this.#opts.clientCert,
        ...(tls.anchors ? { ca: tls.anchors } : {}),
        rejectUnauthorized: true,
      });
      this.#agents.set(key, agent);
    }
    return agent;
  }

  /**
   * POST an RVR; returns the voucher bytes and its format. `accept` is the Accept header for the
   * MASA: by default the RVR's own media type (digest §3.2 DECISION); the pledge's own list when it
   * excluded that type. The answer may be any voucher format (the MASA may choose from its knowledge
   * of the device, digest §3.2): whether the pledge can take it is the caller's decision.
   */
  async requestVoucher(baseUrl: string, format: VoucherFormat, rvr: Uint8Array, tls: MasaTlsOptions, accept = VOUCHER_MEDIA_TYPE[format]):
    Promise<{ voucher: Uint8Array; format: VoucherFormat }> {
    const res = await this.#withRetries(() => this.post(`${baseUrl}/requestvoucher`, VOUCHER_MEDIA_TYPE[format], rvr, accept, tls));
    if (res.status !== 200) throw this.#refusal(res);
    const answered = formatFromMediaType(res.contentType ?? '');
    if (!answered) {
      throw new BrskiError('upstream-invalid', `MASA answered Content-Type ${JSON.stringify(res.contentType)}, which is no voucher format`);
    }
    if (res.body.length === 0) throw new BrskiError('upstream-invalid', 'MASA answered 200 with an empty body');
    return { voucher: res.body, format: answered };
  }

  /** POST the same RVR to requestauditlog (digest §2.1 h); follows a 201 Location once. */
  async requestAuditLog(baseUrl: string, format: VoucherFormat, rvr: Uint8Array, tls: MasaTlsOptions): Promise<Uint8Array> {
    const res = await this.#withRetries(() => this.post(`${baseUrl}/requestauditlog`, VOUCHER_MEDIA_TYPE[format], rvr, 'application/json', tls));
    if (res.status === 201 && res.location) {
      const loc = new URL(res.location, baseUrl);
      if (loc.protocol !== 'https:' || loc.origin !== new URL(baseUrl).origin) throw new BrskiError('upstream-invalid', 'audit log Location points elsewhere');
      const got = await this.#withRetries(() => this.request('GET', loc.href, undefined, undefined, 'application/json', tls));
      if (got.status !== 200) throw this.#refusal(got);
      return got.body;
    }
    if (res.status !== 200) throw this.#refusal(res);
    return res.body;
  }

  #refusal(res: MasaResponse): BrskiError {
    const text = Buffer.from(res.body.subarray(0, 500)).toString('utf8').replace(/[^\x20-\x7e]+/g, ' ').trim();
    const detail = { masaStatus: res.status, masaMessage: text };
    const wait = res.retryAfter === undefined ? {} : { retryAfter: res.retryAfter };
    // 202: accepted, no answer yet (digest §3.3): temporary exactly like a 503.
    if (res.status === 202) return new BrskiError('upstream-unavailable', 'MASA answered 202: not available yet', { detail, ...wait });
    if (res.status >= 500) return new BrskiError('upstream-unavailable', `MASA answered ${res.status}`, { detail, ...wait });
    if (res.status >= 400) return mapMasaRefusal(res.status, text, res.retryAfter);
    // 3xx (we follow no redirects: see isMasaRedirect) and other 2xx: invalid, but no refusal of the device.
    return new BrskiError('upstream-invalid', `unexpected MASA status ${res.status}`, { detail: { masaStatus: res.status } });
  }

  async #withRetries(fn: () => Promise<MasaResponse>): Promise<MasaResponse> {
    let last: unknown;
    for (let i = 0; i < this.#opts.attempts; i++) {
      try {
        const res = await fn();
        if (res.status >= 500 && i + 1 < this.#opts.attempts) { last = this.#refusal(res); continue; }
        return res;
      } catch (err) {
        last = err;
        if (!isTransient(err)) throw err;
      }
    }
    throw last;
  }

  post(url: string, contentType: string, body: Uint8Array, accept: string, tls: MasaTlsOptions): Promise<MasaResponse> {
    return this.request('POST', url, contentType, body, accept, tls);
  }

  request(method: 'GET' | 'POST', url: string, contentType: string | undefined, body: Uint8Array | undefined, accept: string,
    tls: MasaTlsOptions): Promise<MasaResponse> {
    const u = new URL(url);
    if (u.protocol !== 'https:') return Promise.reject(new BrskiError('upstream-invalid', `MASA URL ${url} is not https`));
    const max = this.#opts.maxResponseBytes ?? 256 * 1024;
    return new Promise<MasaResponse>((resolve, reject) => {
      const req = https.request(u, {
        method,
        agent: this.#agent(u, tls),
        // SNI and DNS-ID use the URL host (node sets servername from it; checkServerIdentity is the default).
        headers: {
          accept,
          ...(contentType ? { 'content-type': contentType, 'content-length': String(body?.length ?? 0) } : {}),
        },
        timeout: this.#opts.timeoutMs,
      }, (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > max) { req.destroy(new BrskiError('upstream-invalid', `MASA response exceeds ${max} bytes`)); return; }
          chunks.push(c);
        });
        res.on('end', () => resolve({
          status: res.statusCode ?? 0,
          contentType: String(res.headers['content-type'] ?? ''),
          body: new Uint8Array(Buffer.concat(chunks)),
          ...(res.headers.location ? { location: res.headers.location } : {}),
          ...retryAfterField(parseRetryAfter(res.headers['retry-after'])),
        }));
        res.on('error', (e) => reject(classify(e)));
      });
      const timer = setTimeout(() => req.destroy(new BrskiError('upstream-timeout', `MASA did not answer within ${this.#opts.timeoutMs} ms`)),
        this.#opts.timeoutMs);
      req.on('timeout', () => req.destroy(new BrskiError('upstream-timeout', `MASA did not answer within ${this.#opts.timeoutMs} ms`)));
      req.on('error', (e) => { clearTimeout(timer); reject(classify(e)); });
      req.on('close', () => clearTimeout(timer));
      req.end(body === undefined ? undefined : Buffer.from(body));
    });
  }

  close(): void {
    for (const a of this.#agents.values()) a.destroy();
    this.#agents.clear();
  }
}

function retryAfterField(seconds: number | undefined): { retryAfter?: number } {
  return seconds === undefined ? {} : { retryAfter: seconds };
}

// Certificate problems will not heal by retrying; connection problems may.
const TLS_TRUST_CODES = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_UNTRUSTED', 'CERT_SIGNATURE_FAILURE']);

function classify(e: unknown): BrskiError {
  if (e instanceof BrskiError) return e;
  const code = (e as { code?: string }).code ?? '';
  const message = e instanceof Error ? e.message : String(e);
  if (TLS_TRUST_CODES.has(code)) return new BrskiError('upstream-invalid', `MASA TLS certificate rejected: ${message}`, { cause: e });
  return new BrskiError('upstream-unavailable', `MASA unreachable: ${message}`, { cause: e, detail: { errno: code } });
}

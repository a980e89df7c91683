/**
 * The pledge's HTTPS link to one registrar (digest §2.1(a), §2.3, §12 pledge 6 and 10):
 * - client certificate from the secure element (opaque SecureContext), TLS ≥ 1.2, no SNI;
 * - the registrar certificate is accepted provisionally: no CA validation, but the signatures
 *   inside the presented chain are checked and the chain is kept for the later pin check;
 * - one keep-alive agent with a single socket, so voucher and EST calls share one TLS session;
 *   a later connection must present the same registrar certificate;
 * - 202/503 honoured with Retry-After (capped, jittered), identical request bytes on retry;
 *   at most one redirect.
 */
import type { X509Certificate } from 'node:crypto';
import { Agent, request as httpsRequest } from 'node:https';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { connect, type SecureContext, type TLSSocket, type ConnectionOptions } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseRetryAfter } from '@brski/shared/http/retry-after';
import { PledgeFailure } from './errors.ts';

export { parseRetryAfter };

export interface RetryPolicy {
  /** Upper bound of any single wait, seconds (digest §2.3: 60). */
  capSeconds: number;
  /** Wait used when a 202/503 carries no usable Retry-After, seconds (before the cap). */
  defaultSeconds: number;
  /** Relative jitter added to each wait (0.2 = up to +20 %), still bounded by the cap. */
  jitter: number;
  /** Give up after this many seconds of retrying one request. */
  maxTotalSeconds: number;
  /** Transport errors (refused, reset) are retried on a new connection with exponential back-off. */
  transportRetries: number;
}

export const DEFAULT_RETRY: RetryPolicy = { capSeconds: 60, defaultSeconds: 5, jitter: 0.2, maxTotalSeconds: 4 * 24 * 3600, transportRetries: 5 };

export interface ExchangeResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Registrar chain presented on the connection that carried this response (leaf first). */
  chain: X509Certificate[];
}

export interface ExchangeRequest {
  method: 'GET' | 'POST';
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: Uint8Array;
  /** Retry transport failures on a new connection (off for the voucher request: a new attempt needs a new nonce). */
  retryTransport?: boolean;
  /** After a redirect to another registrar: the body to send it, given its chain (the PVR names the registrar). */
  rebuild?: (chain: X509Certificate[]) => Promise<Uint8Array>;
}

interface ConnectionRecord { chain: X509Certificate[]; handshakeMs: number }

/**
 * Chains already seen, by leaf fingerprint (bounded). A fleet meets the same registrar thousands
 * of times; getPeerCertificate(true) plus re-parsing every certificate was the top CPU item of a
 * pledge. Sound because the cached chain passed the signature checks when first presented and
 * the pin check validates the (identical) leaf against the pin, whatever intermediates come with it.
 */
const chainCache = new Map<string, X509Certificate[]>();
const CHAIN_CACHE_MAX = 256;

function peerChain(sock: TLSSocket): X509Certificate[] {
  // One X509Certificate per connection; its issuerCertificate links follow the presented chain.
  // (Do not mix with the legacy getPeerCertificate(): after this call it returns {}.)
  const leaf = sock.getPeerX509Certificate();
  if (!leaf) return [];
  const hit = chainCache.get(leaf.fingerprint256);
  if (hit) return hit;
  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  for (let c: X509Certificate | undefined = leaf; c && !seen.has(c.fingerprint256) && chain.length < 10; c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    chain.push(c);
  }
  checkPresentedSignatures(chain);
  if (chainCache.size >= CHAIN_CACHE_MAX) chainCache.delete(chainCache.keys().next().value!);
  chainCache.set(leaf.fingerprint256, chain);
  return chain;
}

/**
 * Provisional acceptance (RFC 8995 §5.1): every link of the presented chain whose issuer is
 * present must verify, and a self-issued top must verify with its own key. An issuer that is
 * not presented cannot be checked yet; the pin check after the voucher covers it.
 */
export function checkPresentedSignatures(chain: readonly X509Certificate[]): void {
  if (chain.length === 0) throw new PledgeFailure('registrar-cert-invalid', 'registrar presented no certificate');
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    const issuer = chain[i + 1] ?? (cert.checkIssued(cert) ? cert : undefined);
    if (issuer && cert.checkIssued(issuer) && !cert.verify(issuer.publicKey)) {
      throw new PledgeFailure('registrar-cert-invalid', `signature of ${cert.subject.replace(/\n/g, ', ')} does not verify`);
    }
  }
}

/** Failures a new connection may cure (a restarting registrar refuses, resets, or drops a handshake). */
export function isTransient(e: unknown): e is PledgeFailure {
  return e instanceof PledgeFailure && (e.reason === 'registrar-unreachable' || e.reason === 'tls-failed');
}

/** Shortest wait between two polls: `Retry-After: 0` must not become a tight loop (bounded by the cap). */
const MIN_WAIT_SECONDS = 1;

/** The wait before retrying: at least Retry-After (and 1 s), plus jitter, never above the cap (seconds). */
export function retryWaitSeconds(retryAfter: number | undefined, policy: RetryPolicy, random = Math.random): number {
  const base = Math.min(Math.max(retryAfter ?? policy.defaultSeconds, MIN_WAIT_SECONDS), policy.capSeconds);
  return Math.min(policy.capSeconds, base * (1 + policy.jitter * random()));
}

export interface RegistrarLinkOptions {
  origin: string;
  secureContext: SecureContext;
  retry: RetryPolicy;
  signal?: AbortSignal;
  /** Per-request socket timeout, ms. */
  timeoutMs?: number;
  /** Extra check of every new connection's presented chain (e.g. domain CA trust on re-enrollment); throws to refuse. */
  verifyPeer?: (chain: X509Certificate[]) => void;
}

export class RegistrarLink {
  origin: string;
  readonly #secureContext: SecureContext;
  readonly #retry: RetryPolicy;
  readonly #signal: AbortSignal | undefined;
  readonly #timeoutMs: number;
  readonly #verifyPeer: ((chain: X509Certificate[]) => void) | undefined;
  readonly #connections = new WeakMap<Socket, ConnectionRecord>();
  #agent: Agent;
  #redirected = false;
  /**
   * Leaf fingerprint every connection must present: the first connection's (the registrar the PVR
   * names, accepted provisionally), then confirmed by the pin (digest §12 Pledge 10).
   */
  #expectedLeaf: string | undefined;
  /** Handshake durations of every connection made, ms. */
  readonly handshakes: number[] = [];
  /** Chain of the first connection (what the PVR's proximity leaf names). */
  firstChain: X509Certificate[] | undefined;

  constructor(opts: RegistrarLinkOptions) {
    this.origin = new URL(opts.origin).origin;
    this.#secureContext = opts.secureContext;
    this.#retry = opts.retry;
    this.#signal = opts.signal;
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#verifyPeer = opts.verifyPeer;
    this.#agent = this.#newAgent();
  }

  /** Opens the TLS connection now (the PVR needs the registrar certificate before the first request). */
  async connect(): Promise<X509Certificate[]> {
    const url = new URL(this.origin);
    const sock = await this.#open({ host: url.hostname, port: Number(url.port || 443) });
    // Hand the ready socket to the agent's free pool: the first request reuses it.
    this.#pending = sock;
    return this.#connections.get(sock)!.chain;
  }

  /** After the pin check: every later response must come from this same registrar certificate. */
  pinLeaf(leaf: X509Certificate): void { this.#expectedLeaf = leaf.fingerprint256; }

  /** One request with 202/503 retries, at most one redirect and (optionally) transport retries. */
  async exchange(req: ExchangeRequest): Promise<ExchangeResponse> {
    const started = Date.now();
    let transportFailures = 0;
    for (;;) {
      this.#signal?.throwIfAborted();
      let res: ExchangeResponse;
      try {
        res = await this.#send(req);
      } catch (e) {
        if (e instanceof PledgeFailure && !isTransient(e)) throw e;
        if (!req.retryTransport || ++transportFailures > this.#retry.transportRetries) throw e;
        this.#resetAgent();
        await this.#wait(Math.min(this.#retry.capSeconds, 0.05 * 2 ** transportFailures) * (1 + this.#retry.jitter * Math.random()), started);
        continue;
      }
      if (res.status === 202 || res.status === 503) {
        await this.#wait(retryWaitSeconds(parseRetryAfter(res.headers['retry-after']), this.#retry), started);
        continue;
      }
      if (res.status >= 300 && res.status < 400 && res.headers.location) {
        if (this.#redirected) throw new PledgeFailure('too-many-redirects', `second redirect to ${res.headers.location}`, { registrar: this.origin });
        this.#redirected = true;
        const target = new URL(res.headers.location, this.origin);
        if (target.protocol !== 'https:') throw new PledgeFailure('protocol-error', `redirect to non-HTTPS ${target.href}`, { registrar: this.origin });
        const crossOrigin = target.origin !== this.origin;
        this.origin = target.origin;
        req = { ...req, path: target.pathname + target.search };
        this.#resetAgent();
        if (crossOrigin) {
          // Another registrar: accepted provisionally anew, and a body that named the old one's
          // certificate (the PVR's proximity leaf) is rebuilt for the new one.
          this.#expectedLeaf = undefined;
          this.firstChain = undefined;
          if (req.rebuild) req = { ...req, body: await req.rebuild(await this.connect()) };
        }
        continue;
      }
      return res;
    }
  }

  close(): void {
    this.#pending?.destroy();
    this.#pending = undefined;
    this.#agent.destroy();
  }

  // ---- internals ------------------------------------------------------------------------------

  #pending: TLSSocket | undefined;

  #newAgent(): Agent {
    const agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
    // The agent asks us for connections: hand over the pre-opened socket first, else dial anew.
    (agent as unknown as { createConnection: unknown }).createConnection =
      (options: ConnectionOptions, cb: (err: Error | null, sock?: TLSSocket) => void): TLSSocket | undefined => {
        const ready = this.#pending;
        this.#pending = undefined;
        if (ready && !ready.destroyed) return ready;
        this.#open({ host: options.host, port: options.port }).then((s) => cb(null, s), (e: Error) => cb(e));
        return undefined;
      };
    return agent;
  }

  #resetAgent(): void {
    this.#agent.destroy();
    this.#pending?.destroy();
    this.#pending = undefined;
    this.#agent = this.#newAgent();
  }

  #open(target: { host?: string | undefined; port?: number | undefined }): Promise<TLSSocket> {
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      // No servername: the pledge omits SNI (errata 6648); no CA: acceptance is provisional.
      const sock = connect({
        host: target.host ?? '127.0.0.1', port: target.port ?? 443, secureContext: this.#secureContext,
        rejectUnauthorized: false, minVersion: 'TLSv1.2',
      });
      let tcpUp = false;
      sock.once('connect', () => { tcpUp = true; });
      // Refused/unroutable → unreachable; a failure after TCP came up is the TLS handshake's.
      const fail = (e: Error): void => {
        sock.destroy();
        reject(e instanceof PledgeFailure ? e
          : new PledgeFailure(tcpUp ? 'tls-failed' : 'registrar-unreachable', e.message, { cause: e, registrar: this.origin }));
      };
      sock.once('error', fail);
      sock.once('secureConnect', () => {
        sock.off('error', fail);
        try {
          const chain = peerChain(sock);
          if (chain.length === 0) throw new PledgeFailure('registrar-cert-invalid', 'registrar presented no certificate');
          if (this.#expectedLeaf && chain[0]!.fingerprint256 !== this.#expectedLeaf) {
            throw new PledgeFailure('registrar-cert-changed', 'a new connection presented a different registrar certificate');
          }
          this.#verifyPeer?.(chain);
          const handshakeMs = performance.now() - t0;
          this.handshakes.push(handshakeMs);
          this.firstChain ??= chain;
          this.#expectedLeaf ??= chain[0]!.fingerprint256;
          this.#connections.set(sock, { chain, handshakeMs });
          sock.on('error', () => { /* surfaced through the request */ });
          resolve(sock);
        } catch (e) {
          if (e instanceof PledgeFailure) e.registrar = this.origin;
          sock.destroy();
          reject(e);
        }
      });
    });
  }

  #send(req: ExchangeRequest): Promise<ExchangeResponse> {
    const url = new URL(req.path, this.origin);
    return new Promise((resolve, reject) => {
      const headers: OutgoingHttpHeaders = { ...req.headers };
      if (req.body) headers['content-length'] = req.body.length;
      const r = httpsRequest({
        protocol: 'https:', hostname: url.hostname, port: url.port || 443, path: url.pathname + url.search,
        method: req.method, headers, agent: this.#agent, timeout: this.#timeoutMs,
      }, (res) => {
        const sock = res.socket; // captured now: keep-alive may detach it once the body ends
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', (e) => reject(new PledgeFailure('registrar-unreachable', e.message, { cause: e, registrar: this.origin })));
        res.on('end', () => {
          const rec = this.#connections.get(sock);
          if (!rec) { reject(new PledgeFailure('protocol-error', 'response on an unknown connection', { registrar: this.origin })); return; }
          if (this.#expectedLeaf && rec.chain[0]!.fingerprint256 !== this.#expectedLeaf) {
            reject(new PledgeFailure('registrar-cert-changed', 'response came over a connection with another registrar certificate', { registrar: this.origin }));
            return;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), chain: rec.chain });
        });
      });
      r.on('timeout', () => r.destroy(new Error(`no answer within ${this.#timeoutMs} ms`)));
      r.on('error', (e) => reject(e instanceof PledgeFailure ? e : new PledgeFailure('registrar-unreachable', e.message, { cause: e, registrar: this.origin })));
      r.end(req.body);
    });
  }

  async #wait(seconds: number, started: number): Promise<void> {
    if ((Date.now() - started) / 1000 + seconds > this.#retry.maxTotalSeconds) {
      throw new PledgeFailure('retries-exhausted', `no final answer within ${this.#retry.maxTotalSeconds} s`, { registrar: this.origin });
    }
    try {
      await sleep(seconds * 1000, undefined, this.#signal ? { signal: this.#signal } : undefined);
    } catch (e) {
      throw new PledgeFailure('aborted', 'onboarding aborted', { cause: e, registrar: this.origin });
    }
  }
}

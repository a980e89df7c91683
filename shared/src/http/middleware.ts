/**
 * Koa middleware shared by the MASA and the registrar. Order, outermost first:
 *   requestLog → errorHandler → timeout → routes (each route adds rawBody / requireContentType).
 * requestLog sits outside errorHandler so it sees the final status of refused requests.
 */
import { randomUUID, type X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type Koa from 'koa';
import type { Logger } from 'pino';
import { BrskiError } from '../errors.ts';
import { bareMediaType } from '../media.ts';
import type { Metrics } from '../observability/metrics.ts';

export { errorHandler, answerBrskiError, type ErrorHandlerDeps } from './errors.ts';
export { rawBody, readBody, type RawBodyOptions } from './body.ts';

// ---------------------------------------------------------------------------------------------
// Request log + HTTP metrics

export interface RequestLogDeps {
  logger: Logger;
  metrics?: Metrics;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * One pino child per request (`ctx.state.log`, with the request id, built on first use) and one
 * log line per answer with method, path, status and duration (msg "request", or a handler's
 * outcome, see logOutcome); feeds http_requests_total / http_request_duration_seconds.
 * Routes are labelled by the router's pattern, never the raw path (bounded label cardinality).
 */
export function requestLog(deps: RequestLogDeps): Koa.Middleware {
  return async function logRequest(ctx, next) {
    const start = process.hrtime.bigint();
    const incoming = ctx.get('x-request-id');
    const id = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    // The child logger is built on first use: most requests only need the one line below.
    let child: Logger | undefined;
    Object.defineProperty(ctx.state, 'log', { configurable: true, enumerable: true,
      get: () => (child ??= deps.logger.child({ reqId: id })) });
    ctx.state['requestId'] = id;
    ctx.set('X-Request-Id', id);
    let status = 500;
    try {
      await next();
      status = ctx.status;
    } catch (err) {
      // Only reached when no errorHandler sits below; koa will answer 500 itself.
      status = typeof (err as { status?: unknown }).status === 'number' ? (err as { status: number }).status : 500;
      throw err;
    } finally {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const route = (ctx as unknown as { _matchedRoute?: string | RegExp })._matchedRoute;
      const labels = { route: route === undefined ? 'unmatched' : String(route), method: ctx.method, status: String(status) };
      deps.metrics?.httpRequests.inc(labels);
      deps.metrics?.httpDuration.observe(labels, seconds);
      const outcome = status < 400 ? (ctx.state as Record<symbol, unknown>)[OUTCOME] as RequestOutcome | undefined : undefined;
      (child ?? deps.logger).info({ ...(child ? {} : { reqId: id }), method: ctx.method, path: ctx.path, status,
        ms: Math.round(seconds * 1e6) / 1e3, ...outcome?.fields }, outcome?.msg ?? 'request');
    }
  };
}

const OUTCOME = Symbol('request outcome');
interface RequestOutcome { msg: string; fields: Record<string, unknown> }

/**
 * Lets a handler turn this request's one log line into its outcome record ("voucher issued" with
 * serial, assertion, …) instead of a second line: one line per request, with method, path, status,
 * duration and request id beside the outcome. Only for a successful answer; an error's line comes
 * from errorHandler.
 */
export function logOutcome(ctx: Koa.Context, msg: string, fields: Record<string, unknown>): void {
  (ctx.state as Record<symbol, unknown>)[OUTCOME] = { msg, fields } satisfies RequestOutcome;
}

/**
 * Routes koa's app-level 'error' events (client aborts, parse errors after the response started)
 * to the logger instead of koa's default stderr print. Aborted clients are routine: debug level.
 */
export function logAppErrors(app: Koa, logger: Logger): void {
  app.on('error', (err: unknown, ctx?: Koa.Context) => {
    const e = err as { code?: unknown; message?: unknown };
    const routine = e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.code === 'HPE_INVALID_EOF_STATE'
      || e.message === 'Parse Error' || e.message === 'aborted';
    const entry = { err, path: ctx?.path };
    if (routine) logger.debug(entry, 'connection error'); else logger.error(entry, 'koa error');
  });
}

// ---------------------------------------------------------------------------------------------
// Peer certificates

const peerCache = new WeakMap<TLSSocket, readonly X509Certificate[]>();

/**
 * Issuer certificates seen in earlier handshakes, by SHA-256 fingerprint (bounded, oldest out).
 * Every pledge of a model presents the same IDevID CA: handing back one object for the same
 * bytes lets the per-object caches downstream (chain.ts issuer links, identity.ts fields) hit
 * instead of starting cold on every connection. Only parsing is shared; the caller still
 * validates the chain on every request. Leaves are unique per device and are not cached.
 */
const issuerCache = new Map<string, X509Certificate>();
const ISSUER_CACHE_MAX = 1024;
/** A presented chain longer than this is cut (RFC 8446 puts no bound on it; the validators use ≤ 10). */
const MAX_PEER_CHAIN = 10;

function canonicalIssuer(cert: X509Certificate): X509Certificate {
  const fp = cert.fingerprint256;
  const hit = issuerCache.get(fp);
  // The fingerprint is SHA-256 over the whole DER; the byte compare makes a collision harmless.
  if (hit && hit.raw.equals(cert.raw)) return hit;
  if (issuerCache.size >= ISSUER_CACHE_MAX) issuerCache.delete(issuerCache.keys().next().value!);
  issuerCache.set(fp, cert);
  return cert;
}

/**
 * The certificates the TLS peer presented, leaf first, each issuer after its subject. Nothing
 * here is trusted: the caller validates the chain against its own anchors. Only what the peer sent
 * (the legacy detailed form also appended issuers found in the server's `ca` list). Cached per socket because keep-alive requests share
 * the handshake — and must be: Node's getPeerX509Certificate() moves the issuers out of the
 * connection's chain, so a second call on the socket sees the leaf only (and the legacy
 * getPeerCertificate() then returns {}; never mix the two on one socket). On a resumed TLS
 * session OpenSSL keeps only the leaf, which is why createTlsServer turns resumption off unless
 * asked.
 *
 * getPeerX509Certificate() hands over OpenSSL's already-decoded leaf and one copy per issuer;
 * the former getPeerCertificate(true) built a detailed JS object per certificate and then each
 * was parsed again into an X509Certificate (~0.47 → ~0.15 ms CPU per connection, 2-certificate chain).
 */
export function peerCertificates(ctx: Koa.Context): readonly X509Certificate[] {
  const socket = ctx.req.socket as TLSSocket;
  if (!socket.encrypted || typeof socket.getPeerX509Certificate !== 'function') return [];
  const cached = peerCache.get(socket);
  if (cached) return cached;

  const chain: X509Certificate[] = [];
  const seen = new Set<string>();
  for (let cur = socket.getPeerX509Certificate(); cur && chain.length < MAX_PEER_CHAIN; cur = cur.issuerCertificate) {
    const fp = cur.fingerprint256;
    if (seen.has(fp)) break; // a self-signed top links to itself
    seen.add(fp);
    chain.push(chain.length === 0 ? cur : canonicalIssuer(cur));
  }
  const frozen = Object.freeze(chain);
  peerCache.set(socket, frozen);
  return frozen;
}

/** Alias with the name used in docs/design/modules.md. */
export const peerCertificateChain = peerCertificates;

/** The client's leaf certificate, or a 401 when the client did not present one. */
export function requirePeerCertificate(ctx: Koa.Context): X509Certificate {
  const leaf = peerCertificates(ctx)[0];
  if (!leaf) throw new BrskiError('unauthenticated', 'a TLS client certificate is required');
  return leaf;
}

// ---------------------------------------------------------------------------------------------
// Content type

/** The bare, lower-case request media type ('' when absent). */
export function contentTypeOf(ctx: Koa.Context): string {
  const raw = ctx.get('content-type');
  return raw ? bareMediaType(raw) : '';
}

/** 415 unless the request Content-Type (parameters ignored) is one of `types`. */
export function requireContentType(...types: string[]): Koa.Middleware {
  const allowed = new Set(types.map(bareMediaType));
  return async function checkContentType(ctx, next) {
    assertContentType(ctx, allowed);
    await next();
  };
}

/** Non-middleware form for routes that pick a parser by type. Returns the bare type. */
export function assertContentType(ctx: Koa.Context, allowed: Iterable<string>): string {
  const set = allowed instanceof Set ? allowed as Set<string> : new Set([...allowed].map(bareMediaType));
  const type = contentTypeOf(ctx);
  if (!set.has(type)) {
    throw new BrskiError('unsupported-media-type',
      `Content-Type ${JSON.stringify(type)} is not accepted here (expected ${[...set].join(' or ')})`);
  }
  return type;
}

// ---------------------------------------------------------------------------------------------
// Per-request timeout

export interface TimeoutOptions {
  ms: number;
  /** Retry-After seconds on the 503. Default 1. */
  retryAfter?: number;
}

/**
 * Answers 503 (with Retry-After) when the downstream chain takes longer than `ms`, and aborts
 * `ctx.state.signal` so that work in progress (MASA calls, Redis) can stop early.
 */
export function timeout(opts: TimeoutOptions | number): Koa.Middleware {
  const { ms, retryAfter = 1 } = typeof opts === 'number' ? { ms: opts } : opts;
  return async function requestTimeout(ctx, next) {
    // Epoch ms after which this request has been answered 503: a handler about to store something
    // checks it, so that the client's retry does not meet the abandoned attempt's state.
    ctx.state.deadline = Date.now() + ms;
    // Built on first use of ctx.state.signal (an AbortController per request is measurable at
    // thousands of requests per second, and most handlers never look at it).
    let controller: AbortController | undefined;
    let expiredBy: BrskiError | undefined;
    Object.defineProperty(ctx.state, 'signal', { configurable: true, enumerable: true, get: () => {
      if (!controller) {
        controller = new AbortController();
        if (expiredBy) controller.abort(expiredBy); // first looked at after the deadline
      }
      return controller.signal;
    } });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        expiredBy = new BrskiError('unavailable', `request not answered within ${ms} ms`);
        controller?.abort(expiredBy);
        reject(new BrskiError('unavailable', `request not answered within ${ms} ms`, { retryAfter }));
      }, ms);
    });
    const work = next();
    // The abandoned chain may still reject later; that must not become an unhandled rejection.
    work.catch(() => undefined);
    try {
      await Promise.race([work, expired]);
    } finally {
      clearTimeout(timer);
    }
  };
}

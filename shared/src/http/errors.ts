/**
 * Error → HTTP answer mapping for koa. A BrskiError becomes its status with a plain UTF-8 body
 * `<code>: <message>` (RFC 8995 §5.6: error bodies are human-readable text); anything else is a
 * bug and becomes a generic 500 whose details stay in the log.
 */
import type Koa from 'koa';
import type { Logger } from 'pino';
import { BrskiError, isBrskiError } from '../errors.ts';
import type { Metrics } from '../observability/metrics.ts';

export interface ErrorHandlerDeps {
  logger: Logger;
  metrics?: Metrics;
}

/** Koa's own http-errors (ctx.throw(404), body-too-large in koa internals) carry these fields. */
interface HttpLikeError { status?: unknown; statusCode?: unknown; expose?: unknown; message?: unknown }

const KEEP_HEADERS = new Set(['connection', 'x-request-id']);

function peerOf(ctx: Koa.Context): string | undefined {
  const s = ctx.req.socket;
  return s.remoteAddress === undefined ? undefined : `${s.remoteAddress}:${s.remotePort ?? ''}`;
}

function sanitize(text: string): string {
  // One line of text: no CR/LF (header-ish injection in naive clients), bounded length.
  return text.replace(/[\r\n]+/g, ' ').slice(0, 1000);
}

export function errorHandler(deps: ErrorHandlerDeps): Koa.Middleware;
/** Positional form, as written in docs/design/modules.md. */
export function errorHandler(logger: Logger, metrics?: Metrics): Koa.Middleware;
export function errorHandler(a: ErrorHandlerDeps | Logger, m?: Metrics): Koa.Middleware {
  const deps: ErrorHandlerDeps = 'logger' in a && typeof (a as ErrorHandlerDeps).logger?.warn === 'function'
    ? a as ErrorHandlerDeps
    : { logger: a as Logger, ...(m === undefined ? {} : { metrics: m }) };

  return async function handleErrors(ctx, next) {
    try {
      await next();
    } catch (err) {
      const log: Logger = (ctx.state['log'] as Logger | undefined) ?? deps.logger;
      if (ctx.headerSent || !ctx.writable) {
        log.error({ err, path: ctx.path }, 'error after the response was sent');
        return;
      }
      // Drop whatever a downstream middleware prepared (headers included) before answering,
      // keeping the request id and a decision to close the connection (body refused unread).
      for (const h of ctx.res.getHeaderNames()) if (!KEEP_HEADERS.has(h)) ctx.res.removeHeader(h);

      if (isBrskiError(err)) {
        answerBrskiError(ctx, err);
        const entry = { code: err.code, reason: err.message, status: err.httpStatus, path: ctx.path,
          method: ctx.method, peer: peerOf(ctx), ...(err.detail === undefined ? {} : { detail: err.detail }) };
        if (err.code === 'internal') log.error({ ...entry, err }, 'internal error');
        else if (err.httpStatus < 400) log.info(entry, 'deferred');
        else log.warn(entry, 'refused');
        if (err.httpStatus >= 400) deps.metrics?.refusals.inc({ reason: err.code });
        return;
      }

      const e = (err ?? {}) as HttpLikeError;
      const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : 500;
      if (status >= 400 && status < 500 && e.expose === true && typeof e.message === 'string') {
        // A deliberate koa/http-errors client error (e.g. ctx.throw(404)): same body shape.
        answer(ctx, status, `http-${status}: ${sanitize(e.message)}`);
        log.warn({ code: `http-${status}`, reason: e.message, status, path: ctx.path, method: ctx.method,
          peer: peerOf(ctx) }, 'refused');
        deps.metrics?.refusals.inc({ reason: `http-${status}` });
        return;
      }
      answer(ctx, 500, 'internal error');
      log.error({ err, path: ctx.path, method: ctx.method, peer: peerOf(ctx) }, 'unhandled error');
      deps.metrics?.refusals.inc({ reason: 'internal' });
    }
  };
}

function answer(ctx: Koa.Context, status: number, text: string): void {
  ctx.status = status;
  ctx.type = 'text/plain; charset=utf-8';
  ctx.body = `${text}\n`;
}

export function answerBrskiError(ctx: Koa.Context, err: BrskiError): void {
  const text = err.code === 'internal' ? 'internal: internal error' : `${err.code}: ${sanitize(err.message)}`;
  answer(ctx, err.httpStatus, text);
  if (err.retryAfter !== undefined && Number.isFinite(err.retryAfter)) {
    ctx.set('Retry-After', String(Math.max(0, Math.ceil(err.retryAfter))));
  }
}

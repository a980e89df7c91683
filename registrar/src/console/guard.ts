/**
 * The console's security middleware: response headers (strict CSP and friends), login
 * enforcement, form parsing with a size limit, and the CSRF check on every state-changing request.
 */
import type Koa from 'koa';
import { BrskiError } from '@brski/shared/errors';
import { readBody } from '@brski/shared/http/middleware';
import { SESSION_COOKIE, type Session, type SessionKeys } from './session.ts';

export const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

declare module 'koa' {
  interface DefaultState {
    consoleSession?: Session;
    form?: URLSearchParams;
  }
}

export function securityHeaders(): Koa.Middleware {
  const set = (ctx: Koa.Context) => {
    ctx.set('Content-Security-Policy', CSP);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('X-Frame-Options', 'DENY');
    // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on same-origin form posts.
    ctx.set('Referrer-Policy', 'same-origin');
    ctx.set('Cross-Origin-Opener-Policy', 'same-origin');
    ctx.set('Cross-Origin-Resource-Policy', 'same-origin');
    ctx.set('Permissions-Policy', 'camera=(), microphone=(), geolocation=()');
    ctx.set('Strict-Transport-Security', 'max-age=31536000');
  };
  return async (ctx, next) => {
    set(ctx);
    try {
      await next();
    } finally {
      // The shared error handler strips headers before answering; an error page keeps them
      // because the console renders its own (see routes.ts), but set again to be sure.
      if (!ctx.headerSent) set(ctx);
    }
  };
}

/** A browser navigation (as opposed to htmx, fetch or a download tool) that can follow a redirect to the login page. */
function isNavigation(ctx: Koa.Context): boolean {
  return (ctx.method === 'GET' || ctx.method === 'HEAD') && !ctx.get('hx-request') && (ctx.get('accept').includes('text/html'));
}

export function requireSession(keys: SessionKeys, now: () => Date): Koa.Middleware {
  return async (ctx, next) => {
    const s = keys.verify(ctx.cookies.get(SESSION_COOKIE), now().getTime());
    if (!s) {
      if (isNavigation(ctx)) {
        ctx.status = 303;
        ctx.redirect(`/console/login?next=${encodeURIComponent(ctx.path)}`);
        return;
      }
      // htmx follows HX-Redirect (a poll after the session expired lands on the login page).
      if (ctx.get('hx-request')) ctx.set('HX-Redirect', '/console/login');
      throw new BrskiError('unauthenticated', 'console: log in first');
    }
    ctx.state.consoleSession = s;
    await next();
  };
}

const FORM_TYPE = 'application/x-www-form-urlencoded';

/** Parses url-encoded forms (the only body the console accepts) into ctx.state.form. */
export function formBody(limit = 16 * 1024): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      const type = (ctx.get('content-type').split(';')[0] ?? '').trim().toLowerCase();
      const body = await readBody(ctx, limit);
      if (body.length > 0 && type !== FORM_TYPE) throw new BrskiError('unsupported-media-type', `console forms are ${FORM_TYPE}`);
      ctx.state.form = new URLSearchParams(body.toString('utf8'));
    }
    await next();
  };
}

/**
 * CSRF: every request that is not GET/HEAD must carry the session's synchronizer token (header
 * or form field). Fetch metadata and Origin, when the browser sends them, must say same-origin —
 * a second, independent layer (SameSite=Strict on the cookie is the third).
 */
export function requireCsrf(keys: SessionKeys): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.method === 'GET' || ctx.method === 'HEAD') return next();
    const site = ctx.get('sec-fetch-site');
    if (site && site !== 'same-origin') throw new BrskiError('forbidden', 'console: cross-site request refused');
    const origin = ctx.get('origin');
    if (origin && origin !== `${ctx.protocol}://${ctx.host}`) throw new BrskiError('forbidden', 'console: request from another origin refused');
    const s = ctx.state.consoleSession;
    const token = ctx.get('x-csrf-token') || ctx.state.form?.get('_csrf') || undefined;
    if (!s || !keys.checkCsrf(s, token)) throw new BrskiError('forbidden', 'console: missing or wrong CSRF token');
    await next();
  };
}

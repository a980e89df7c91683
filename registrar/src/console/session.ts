/**
 * Console login sessions without server state: the cookie is `<payload>.<mac>` where the MAC key
 * is derived from the admin token. Consequences, all intended: every registrar process that shares
 * the token accepts the session (admin listeners behind one name), rotating the token logs every
 * operator out, and nothing about the token itself ever reaches the browser.
 *
 * CSRF: a synchronizer token derived from the session id (HMAC under a separate label), rendered
 * into pages and sent back by htmx as `X-CSRF-Token` or by plain forms as `_csrf`. An attacker's
 * page can neither read it (same-origin policy) nor forge it (needs the key).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = '__Host-brski-console';
export const LOGIN_COOKIE = '__Host-brski-console-login';
/** Absolute session lifetime; an operator logs in again after a shift. */
export const SESSION_SECONDS = 8 * 3600;

export interface Session { id: string; issuedAt: number; expiresAt: number }

const b64u = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

function equal(a: string, b: string): boolean {
  // Compare digests: constant time and independent of the lengths.
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db) && a.length === b.length;
}

export class SessionKeys {
  readonly #sessionKey: Buffer;
  readonly #csrfKey: Buffer;
  readonly #tokenDigest: Buffer;
  /** Logged-out session ids (this process only), kept until they would have expired anyway. */
  readonly #revoked = new Map<string, number>();

  constructor(adminToken: string) {
    this.#sessionKey = createHmac('sha256', adminToken).update('brski-console/session/v1').digest();
    this.#csrfKey = createHmac('sha256', adminToken).update('brski-console/csrf/v1').digest();
    this.#tokenDigest = createHash('sha256').update(adminToken).digest();
  }

  /** Constant-time check of a submitted admin token. */
  checkToken(candidate: string): boolean {
    return timingSafeEqual(this.#tokenDigest, createHash('sha256').update(candidate).digest());
  }

  issue(nowMs: number): { cookie: string; session: Session } {
    const session: Session = { id: b64u(randomBytes(18)), issuedAt: Math.floor(nowMs / 1000), expiresAt: Math.floor(nowMs / 1000) + SESSION_SECONDS };
    const payload = b64u(JSON.stringify({ v: 1, sid: session.id, iat: session.issuedAt, exp: session.expiresAt }));
    return { cookie: `${payload}.${this.#mac(payload)}`, session };
  }

  /** The session a cookie value stands for, or undefined (bad MAC, expired, logged out, malformed). */
  verify(cookie: string | undefined, nowMs: number): Session | undefined {
    if (!cookie || cookie.length > 512) return undefined;
    const dot = cookie.indexOf('.');
    if (dot < 1) return undefined;
    const payload = cookie.slice(0, dot);
    if (!equal(cookie.slice(dot + 1), this.#mac(payload))) return undefined;
    let p: { v?: unknown; sid?: unknown; iat?: unknown; exp?: unknown };
    try { p = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof p; } catch { return undefined; }
    if (p.v !== 1 || typeof p.sid !== 'string' || typeof p.iat !== 'number' || typeof p.exp !== 'number') return undefined;
    const now = Math.floor(nowMs / 1000);
    if (p.exp <= now || p.iat > now + 60 || this.#revoked.has(p.sid)) return undefined;
    return { id: p.sid, issuedAt: p.iat, expiresAt: p.exp };
  }

  revoke(s: Session, nowMs: number): void {
    this.#revoked.set(s.id, s.expiresAt);
    const now = Math.floor(nowMs / 1000);
    for (const [id, exp] of this.#revoked) if (exp <= now) this.#revoked.delete(id);
  }

  csrfToken(s: Session): string {
    return b64u(createHmac('sha256', this.#csrfKey).update(s.id).digest());
  }

  checkCsrf(s: Session, submitted: string | undefined): boolean {
    return submitted !== undefined && submitted !== '' && equal(submitted, this.csrfToken(s));
  }

  #mac(payload: string): string {
    return b64u(createHmac('sha256', this.#sessionKey).update(payload).digest());
  }
}

/**
 * Login throttle: after `max` failures within `windowMs` further attempts are refused until the
 * window passes. Global rather than per address: the admin listener is operator-only, and a
 * per-address limit is trivially sidestepped from a shared network.
 */
export class LoginThrottle {
  #failures: number[] = [];
  constructor(private readonly max = 10, private readonly windowMs = 60_000) {}
  blocked(nowMs: number): boolean {
    this.#failures = this.#failures.filter((t) => nowMs - t < this.windowMs);
    return this.#failures.length >= this.max;
  }
  fail(nowMs: number): void { this.#failures.push(nowMs); }
}

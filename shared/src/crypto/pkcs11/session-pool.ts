/**
 * A small pool of PKCS#11 sessions on one token, shared by every signer using that token in this
 * process. PKCS#11 login state belongs to the application, not the session: we log in once on
 * the first session and every other session of the token is then logged in too. Each session runs
 * one operation at a time, so concurrent C_SignAsync calls (libuv worker threads) each take their
 * own session; callers beyond `size` wait in FIFO order.
 *
 * When a session is lost (token removed, sessions closed, library reset) the failing request gets
 * an HsmError (503) and the pool is dropped; the next request tries ONE rebuild (single-flight,
 * at most once per `retryIntervalMs`). A wrong PIN is never retried: that would walk a real HSM
 * into a PIN lockout.
 */
import pkcs11js from 'pkcs11js';
import { HsmError, ckrOf } from './errors.ts';
import type { Handle, Pkcs11Module, TokenDescription } from './module.ts';
import type { Pkcs11Uri } from './uri.ts';

export interface Lease {
  readonly session: Handle;
  /** Bumped on every rebuild: object handles found in an older generation must be looked up again. */
  readonly generation: number;
}

export interface PoolOptions {
  size?: number;
  retryIntervalMs?: number;
}

export class TokenSessionPool {
  readonly module: Pkcs11Module;
  readonly #selector: Pkcs11Uri;
  readonly #pin: string | undefined;
  readonly #size: number;
  readonly #retryIntervalMs: number;
  #token: TokenDescription | undefined;
  /** Serial of the token first opened: a rebuild must find the same token, not a look-alike. */
  #serial: string | undefined;
  #idle: Handle[] = [];
  #open = 0;
  #generation = 0;
  #waiters: Array<{ resolve: (l: Lease) => void; reject: (e: unknown) => void }> = [];
  #broken: HsmError | undefined;
  #fatal: HsmError | undefined;
  #lastAttempt = 0;
  #rebuilding: Promise<void> | undefined;

  constructor(module: Pkcs11Module, selector: Pkcs11Uri, pin: string | undefined, opts: PoolOptions = {}) {
    this.module = module;
    this.#selector = selector;
    this.#pin = pin;
    this.#size = Math.max(1, opts.size ?? 4);
    this.#retryIntervalMs = opts.retryIntervalMs ?? 1000;
  }

  get token(): TokenDescription {
    if (!this.#token) throw new HsmError('session-lost', 'token session pool is not open');
    return this.#token;
  }

  get generation(): number { return this.#generation; }

  /** Finds the token, opens the first session and logs in. Throws HsmError on any failure. */
  open(): void {
    if (this.#fatal) throw this.#fatal;
    this.#checkModule();
    const lib = this.module.lib;
    const token = this.module.findToken(this.#serial === undefined ? this.#selector : { ...this.#selector, serial: this.#serial });
    let session: Handle;
    try {
      session = lib.C_OpenSession(token.slot, pkcs11js.CKF_SERIAL_SESSION);
    } catch (e) {
      const ckr = ckrOf(e);
      throw new HsmError('session-lost', `cannot open a session on token '${token.label}'${ckr ? `: ${ckr}` : ''}`, { cause: e, ...(ckr ? { ckr } : {}) });
    }
    try {
      this.#login(session, token);
    } catch (e) {
      try { lib.C_CloseSession(session); } catch { /* already gone */ }
      throw e;
    }
    this.#token = token;
    this.#serial = token.serial;
    this.#idle = [session];
    this.#open = 1;
    this.#generation++;
    this.#broken = undefined;
  }

  #login(session: Handle, token: TokenDescription): void {
    if ((token.flags & pkcs11js.CKF_LOGIN_REQUIRED) === 0) return;
    if ((token.flags & pkcs11js.CKF_USER_PIN_LOCKED) !== 0) {
      throw (this.#fatal = new HsmError('pin-locked', `user PIN of token '${token.label}' is locked`));
    }
    if (this.#pin === undefined) throw new HsmError('pin-missing', `token '${token.label}' requires a login and no PIN is configured`);
    try {
      this.module.lib.C_Login(session, pkcs11js.CKU_USER, this.#pin);
    } catch (e) {
      const ckr = ckrOf(e);
      if (ckr === 'CKR_USER_ALREADY_LOGGED_IN') return; // another pool/tool in this process logged in: state is shared
      if (ckr === 'CKR_PIN_INCORRECT' || ckr === 'CKR_PIN_LEN_RANGE') {
        throw (this.#fatal = new HsmError('pin-incorrect', `login to token '${token.label}' refused: wrong PIN`, { ckr }));
      }
      if (ckr === 'CKR_PIN_LOCKED' || ckr === 'CKR_PIN_EXPIRED') {
        throw (this.#fatal = new HsmError('pin-locked', `login to token '${token.label}' refused: ${ckr}`, { ckr }));
      }
      throw new HsmError('session-lost', `login to token '${token.label}' failed${ckr ? `: ${ckr}` : ''}`, { cause: e, ...(ckr ? { ckr } : {}) });
    }
  }

  async acquire(): Promise<Lease> {
    if (this.#fatal) throw this.#fatal;
    this.#checkModule();
    if (this.#broken) await this.#rebuild();
    const idle = this.#idle.pop();
    if (idle) return { session: idle, generation: this.#generation };
    if (this.#open < this.#size) {
      const slot = this.token.slot;
      try {
        const session = this.module.lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
        this.#open++;
        return { session, generation: this.#generation };
      } catch (e) {
        const ckr = ckrOf(e);
        const err = new HsmError('session-lost', `cannot open a session${ckr ? `: ${ckr}` : ''}`, { cause: e, ...(ckr ? { ckr } : {}) });
        this.invalidate(err);
        throw err;
      }
    }
    return new Promise<Lease>((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Returns a session; `broken` closes it instead (an operation may still be pending on it). */
  release(lease: Lease, broken = false): void {
    if (lease.generation !== this.#generation || this.#broken) { this.#close(lease.session); return; }
    if (broken) { this.#close(lease.session); this.#open--; }
    else {
      const waiter = this.#waiters.shift();
      if (waiter) { waiter.resolve(lease); return; }
      this.#idle.push(lease.session);
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) this.acquire().then(waiter.resolve, waiter.reject);
  }

  /** Drops every session after a session-level failure; waiters get the error. */
  invalidate(cause: HsmError): void {
    if (this.#broken) return;
    this.#broken = cause;
    for (const s of this.#idle) this.#close(s);
    this.#idle = [];
    this.#open = 0;
    for (const w of this.#waiters.splice(0)) w.reject(cause);
  }

  async #rebuild(): Promise<void> {
    if (this.#rebuilding) return this.#rebuilding;
    if (Date.now() - this.#lastAttempt < this.#retryIntervalMs) throw this.#broken!;
    this.#lastAttempt = Date.now();
    this.#rebuilding = (async () => {
      try {
        this.open();
      } catch (e) {
        // Keep answering with the newest reason (e.g. token-not-found after session-lost).
        this.#broken = e instanceof HsmError ? e : new HsmError('session-lost', 'cannot reopen the token', { cause: e });
        throw this.#broken;
      } finally {
        this.#rebuilding = undefined;
      }
    })();
    return this.#rebuilding;
  }

  /** A finalized library must never be called again (pkcs11js would call into an unloaded .so). */
  #checkModule(): void {
    if (this.module.finalized) throw (this.#fatal = new HsmError('session-lost', `PKCS#11 module ${this.module.path} was finalized`));
  }

  #close(session: Handle): void {
    if (this.module.finalized) return;
    try { this.module.lib.C_CloseSession(session); } catch { /* token gone: nothing to close */ }
  }

  /** Closes every idle session (shutdown). In-flight leases are closed when released. */
  close(): void {
    this.invalidate(new HsmError('session-lost', 'session pool closed'));
    this.#fatal = this.#broken;
    pools.delete(this);
  }
}

const pools = new Set<TokenSessionPool>();

/**
 * The process-wide pool for the token the selector names, opened and logged in. Two signers on
 * the same token (e.g. the MASA's voucher key and its CA key) share one pool and one login.
 */
export function getTokenPool(module: Pkcs11Module, selector: Pkcs11Uri, pin: string | undefined, opts?: PoolOptions): TokenSessionPool {
  const token = module.findToken(selector);
  for (const p of pools) if (p.module.finalized) pools.delete(p);
  for (const p of pools) {
    if (p.module === module && !module.finalized && p.token.serial === token.serial && p.token.label === token.label) {
      try {
        if (p.generation > 0) return p;
      } catch { /* closed pool: fall through */ }
    }
  }
  const pool = new TokenSessionPool(module, selector, pin, opts);
  pool.open();
  pools.add(pool);
  return pool;
}

/**
 * Typed failures of the PKCS#11 key store. Every one maps to 'hsm-unavailable' (503): whether the
 * token is missing at start or vanished mid-request, the service cannot sign and must say so —
 * it never falls back to a software key.
 */
import pkcs11js from 'pkcs11js';
import { BrskiError, type BrskiErrorOptions } from '../../errors.ts';

export type HsmFailure =
  | 'module-load'      // the PKCS#11 library cannot be loaded or initialised
  | 'token-not-found'  // no slot holds a token matching the URI
  | 'token-ambiguous'  // more than one token matches the URI
  | 'pin-missing'      // the token needs a login and no PIN source was configured
  | 'pin-incorrect'    // C_Login refused the PIN
  | 'pin-locked'       // the user PIN is locked or expired
  | 'key-not-found'    // no private key matches the URI's object/id
  | 'key-ambiguous'    // more than one private key matches
  | 'key-unusable'     // key found but wrong type/curve, not allowed to sign, or its public half is missing
  | 'key-mismatch'     // the configured certificate does not belong to the token key, or the key changed
  | 'session-lost'     // sessions or login vanished (token removed, library reset)
  | 'device-error';    // any other PKCS#11 failure during an operation

export class HsmError extends BrskiError {
  readonly failure: HsmFailure;
  /** CKR_* name of the underlying PKCS#11 return value, when there is one. */
  readonly ckr: string | undefined;

  constructor(failure: HsmFailure, message: string, options: BrskiErrorOptions & { ckr?: string } = {}) {
    super('hsm-unavailable', message, {
      ...options,
      retryAfter: options.retryAfter ?? 30,
      detail: { ...options.detail, failure, ...(options.ckr ? { ckr: options.ckr } : {}) },
    });
    this.failure = failure;
    this.ckr = options.ckr;
  }
}

const CKR_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(pkcs11js)) {
  if (name.startsWith('CKR_') && typeof value === 'number' && !CKR_NAMES.has(value)) CKR_NAMES.set(value, name);
}

/** The CKR_* name of a pkcs11js error, or undefined for anything else. */
export function ckrOf(e: unknown): string | undefined {
  if (e instanceof pkcs11js.Pkcs11Error) return CKR_NAMES.get(e.code) ?? `CKR_0x${e.code.toString(16)}`;
  return undefined;
}

/**
 * Return values after which the sessions (or the login) can no longer be trusted: the pool
 * drops them and rebuilds on the next request, re-checking that the key is the same one.
 */
const SESSION_LOST = new Set([
  'CKR_SESSION_HANDLE_INVALID', 'CKR_SESSION_CLOSED', 'CKR_DEVICE_REMOVED', 'CKR_TOKEN_NOT_PRESENT',
  'CKR_TOKEN_NOT_RECOGNIZED', 'CKR_USER_NOT_LOGGED_IN', 'CKR_OBJECT_HANDLE_INVALID', 'CKR_KEY_HANDLE_INVALID',
  'CKR_DEVICE_ERROR', 'CKR_CRYPTOKI_NOT_INITIALIZED', 'CKR_GENERAL_ERROR', 'CKR_SLOT_ID_INVALID',
]);

export function isSessionLost(ckr: string | undefined): boolean {
  return ckr !== undefined && SESSION_LOST.has(ckr);
}

/** Wraps any failure of an operation into an HsmError (already-typed errors pass through). */
export function toHsmError(e: unknown, what: string): HsmError {
  if (e instanceof HsmError) return e;
  const ckr = ckrOf(e);
  const failure: HsmFailure = isSessionLost(ckr) ? 'session-lost' : 'device-error';
  return new HsmError(failure, `${what} failed${ckr ? `: ${ckr}` : ''}`, { cause: e, ...(ckr ? { ckr } : {}) });
}

/** A CK_ULONG attribute value (4 or 8 bytes, host order — little-endian on every platform we run on). */
export function ulong(b: Buffer): number {
  if (b.length === 8) return Number(b.readBigUInt64LE(0));
  if (b.length === 4) return b.readUInt32LE(0);
  throw new HsmError('device-error', `CK_ULONG attribute of ${b.length} bytes`);
}

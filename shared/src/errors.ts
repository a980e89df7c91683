/**
 * Typed errors for the whole stack. Every refusal a service can give has a code here, and
 * ERROR_STATUS is the one place that maps a code to its HTTP and CoAP status (digest §3.3).
 * Codecs throw the format-level codes; authorities throw the policy-level ones.
 */

export const ERROR_STATUS = {
  // input / format
  'malformed': { http: 400, coap: '4.00' },
  'too-large': { http: 413, coap: '4.13' },
  'unsupported-media-type': { http: 415, coap: '4.15' },
  'not-acceptable': { http: 406, coap: '4.06' },
  'invalid-voucher': { http: 400, coap: '4.00' },
  // cryptography / PKI
  'bad-signature': { http: 403, coap: '4.03' },
  'untrusted-chain': { http: 403, coap: '4.03' },
  'certificate-expired': { http: 403, coap: '4.03' },
  'certificate-revoked': { http: 403, coap: '4.03' },
  'missing-eku': { http: 403, coap: '4.03' },
  'bad-csr': { http: 400, coap: '4.00' },
  // BRSKI protocol checks
  'unauthenticated': { http: 401, coap: '4.01' },
  'proximity-mismatch': { http: 401, coap: '4.01' },
  'serial-mismatch': { http: 403, coap: '4.03' },
  'issuer-mismatch': { http: 403, coap: '4.03' },
  'nonce-mismatch': { http: 403, coap: '4.03' },
  'replayed-nonce': { http: 403, coap: '4.03' },
  'signer-mismatch': { http: 403, coap: '4.03' },
  'unknown-device': { http: 404, coap: '4.04' },
  'device-revoked': { http: 403, coap: '4.03' },
  'claimed-by-other-domain': { http: 403, coap: '4.03' },
  'not-authorized': { http: 404, coap: '4.04' },
  'forbidden': { http: 403, coap: '4.03' },
  'audit-policy-failed': { http: 406, coap: '4.06' },
  'no-voucher': { http: 403, coap: '4.03' },
  'clone-detected': { http: 409, coap: '4.09' },
  'rate-limited': { http: 429, coap: '4.29' },
  'not-found': { http: 404, coap: '4.04' },
  'conflict': { http: 409, coap: '4.09' },
  // waiting / upstream
  'pending': { http: 202, coap: '5.03' },
  'upstream-unavailable': { http: 503, coap: '5.03' },
  'upstream-invalid': { http: 502, coap: '5.02' },
  'upstream-timeout': { http: 504, coap: '5.04' },
  'unavailable': { http: 503, coap: '5.03' },
  'internal': { http: 500, coap: '5.00' },
  // key store: PKCS#11 token/key unusable (missing, wrong PIN, removed); never falls back to a software key
  'hsm-unavailable': { http: 503, coap: '5.03' },
  // MASA: a voucher-request whose created-on lies outside the accepted clock window (replay / stale request)
  'stale-request': { http: 403, coap: '4.03' },
  // revocation status (CRL) of a presented certificate could not be obtained or verified; fail closed, retry later
  'revocation-unavailable': { http: 503, coap: '5.03' },
} as const satisfies Record<string, { http: number; coap: string }>;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface BrskiErrorOptions {
  cause?: unknown;
  /** Overrides the table's HTTP status where the protocol says so for this actor. */
  httpStatus?: number;
  /** Seconds, for 202/503 answers. */
  retryAfter?: number;
  /** Extra structured context for logs (never secrets). */
  detail?: Record<string, unknown>;
}

export class BrskiError extends Error {
  readonly code: ErrorCode;
  readonly httpStatus: number;
  readonly coapStatus: string;
  readonly retryAfter: number | undefined;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: BrskiErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.httpStatus = options.httpStatus ?? ERROR_STATUS[code].http;
    this.coapStatus = ERROR_STATUS[code].coap;
    this.retryAfter = options.retryAfter;
    this.detail = options.detail;
  }
}

/** Garbage, truncated or structurally wrong input. */
export class MalformedError extends BrskiError {
  constructor(message: string, options?: BrskiErrorOptions) { super('malformed', message, options); }
}

/** Input over a configured size limit. */
export class SizeLimitError extends BrskiError {
  constructor(limit: number, actual?: number) {
    super('too-large', `input exceeds the limit of ${limit} bytes${actual === undefined ? '' : ` (got ${actual})`}`);
  }
}

/** A voucher or voucher-request whose content breaks the YANG model; names the offending leaf. */
export class VoucherValidationError extends BrskiError {
  readonly leaf: string | undefined;
  constructor(message: string, leaf?: string, options?: BrskiErrorOptions) {
    super('invalid-voucher', leaf ? `${leaf}: ${message}` : message, options);
    this.leaf = leaf;
  }
}

/** A signature that does not verify. */
export class SignatureError extends BrskiError {
  constructor(message: string, options?: BrskiErrorOptions) { super('bad-signature', message, options); }
}

/** A certificate chain that does not validate (untrusted, expired, wrong usage, revoked). */
export class ChainError extends BrskiError {
  constructor(code: 'untrusted-chain' | 'certificate-expired' | 'certificate-revoked' | 'missing-eku', message: string,
    options?: BrskiErrorOptions) { super(code, message, options); }
}

export function isBrskiError(e: unknown): e is BrskiError {
  return e instanceof BrskiError;
}

/**
 * Every way an onboarding can fail, by name. The fleet counts failures by `reason`; the
 * underlying shared error code (`code`) keeps the status mapping of shared/src/errors.ts.
 */
import { BrskiError, type BrskiErrorOptions, type ErrorCode } from '@brski/shared/errors';

export const PLEDGE_FAILURE_CODES = {
  'registrar-unreachable': 'unavailable',       // TCP/TLS connection could not be made
  'tls-failed': 'unavailable',                  // handshake failed
  'registrar-cert-invalid': 'bad-signature',    // presented chain's own signatures do not verify
  'registrar-cert-changed': 'signer-mismatch',  // a later connection presented another certificate
  'voucher-refused': 'forbidden',               // registrar answered 4xx/5xx to the PVR
  'voucher-format-unsupported': 'unsupported-media-type', // 406/415, or a voucher in another format
  'voucher-malformed': 'invalid-voucher',       // unparsable voucher or breaking the YANG model
  'voucher-signature': 'bad-signature',         // does not verify against the manufacturer anchor
  'voucher-serial-mismatch': 'serial-mismatch',
  'voucher-idevid-issuer-mismatch': 'issuer-mismatch',
  'voucher-nonce-mismatch': 'nonce-mismatch',
  'voucher-nonce-missing': 'nonce-mismatch',    // nonceless voucher while policy requires a nonce
  'voucher-assertion': 'invalid-voucher',       // assertion absent or not acceptable
  'voucher-expired': 'invalid-voucher',
  'voucher-not-yet-valid': 'invalid-voucher',   // created-on in the future (beyond clock skew)
  'voucher-revocation-unchecked': 'invalid-voucher', // domain-cert-revocation-checks true, and this pledge cannot check
  'voucher-no-pin': 'invalid-voucher',
  'registrar-pin-mismatch': 'untrusted-chain',  // registrar TLS chain does not validate against the pin
  'est-cacerts-failed': 'upstream-invalid',
  'est-csrattrs-failed': 'upstream-invalid',
  'enroll-refused': 'forbidden',
  'ldevid-invalid': 'untrusted-chain',          // returned certificate is not ours or not from the domain CA
  'too-many-redirects': 'upstream-invalid',
  'retries-exhausted': 'upstream-timeout',      // 202/503/transport retries beyond the configured budget
  'protocol-error': 'upstream-invalid',         // unexpected status or content type
  'aborted': 'unavailable',
} as const satisfies Record<string, ErrorCode>;

export type PledgeFailureReason = keyof typeof PLEDGE_FAILURE_CODES;

export class PledgeFailure extends BrskiError {
  readonly reason: PledgeFailureReason;
  /** Registrar this failure happened with (origin), when known. */
  registrar: string | undefined;
  /** Failures with earlier registrars when every registrar was abandoned. */
  previous: Array<{ registrar: string; reason: PledgeFailureReason }> = [];
  /** Phase the failure happened in (a transport failure before the voucher earns a new attempt). */
  phase: 'voucher' | 'enroll' | undefined;
  constructor(reason: PledgeFailureReason, message: string,
    options: BrskiErrorOptions & { registrar?: string; phase?: 'voucher' | 'enroll' } = {}) {
    super(PLEDGE_FAILURE_CODES[reason], `${reason}: ${message}`, options);
    this.reason = reason;
    this.registrar = options.registrar;
    this.phase = options.phase;
  }
}

export function isPledgeFailure(e: unknown): e is PledgeFailure {
  return e instanceof PledgeFailure;
}

/** Maps an envelope/codec error from voucher verification to a pledge failure reason. */
export function voucherFailureFrom(e: unknown): PledgeFailure {
  if (e instanceof PledgeFailure) return e;
  if (e instanceof BrskiError) {
    const reason: PledgeFailureReason = ['bad-signature', 'untrusted-chain', 'certificate-expired', 'certificate-revoked', 'missing-eku']
      .includes(e.code) ? 'voucher-signature' : 'voucher-malformed';
    return new PledgeFailure(reason, e.message, { cause: e });
  }
  return new PledgeFailure('voucher-malformed', e instanceof Error ? e.message : String(e), { cause: e });
}

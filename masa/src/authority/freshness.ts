/**
 * RVR freshness: the registrar's `created-on` must lie within a clock window around the MASA's
 * time. A nonced request is also protected by the nonce ledger; the window additionally bounds how
 * long a captured nonceless request (or an audit-log request) stays usable. RFC 8995 registrars
 * may omit created-on (it is optional in the YANG), so its absence is accepted and logged.
 */
import { BrskiError } from '@brski/shared/errors';
import type { Logger } from '@brski/shared/observability/logger';
import { parseVoucherDate } from '@brski/shared/voucher/validate';

export interface FreshnessConfig {
  /** Oldest accepted created-on, seconds before now. */
  maxRvrAgeSeconds: number;
  /** Latest accepted created-on, seconds after now (registrar clock ahead of ours). */
  maxRvrFutureSkewSeconds: number;
}

export function checkRvrFreshness(createdOn: string | undefined, at: Date, cfg: FreshnessConfig,
  logger: Logger, context: Record<string, unknown>): void {
  if (createdOn === undefined) {
    logger.info({ ...context, check: 'rvr-freshness' }, 'voucher-request without created-on accepted (RFC 8995 registrar)');
    return;
  }
  // The codec validated the syntax already; parse errors here would be a codec bug, reported as 400.
  const t = parseVoucherDate(createdOn, 'created-on').getTime();
  const ageSeconds = (at.getTime() - t) / 1000;
  if (ageSeconds > cfg.maxRvrAgeSeconds) {
    throw new BrskiError('stale-request', `voucher-request created-on ${createdOn} is ${Math.round(ageSeconds)} s old `
      + `(at most ${cfg.maxRvrAgeSeconds} s accepted)`, { detail: { ...context, createdOn, ageSeconds: Math.round(ageSeconds) } });
  }
  if (-ageSeconds > cfg.maxRvrFutureSkewSeconds) {
    throw new BrskiError('stale-request', `voucher-request created-on ${createdOn} is ${Math.round(-ageSeconds)} s in the future `
      + `(at most ${cfg.maxRvrFutureSkewSeconds} s of clock skew accepted)`,
    { detail: { ...context, createdOn, aheadSeconds: Math.round(-ageSeconds) } });
  }
}

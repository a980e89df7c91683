/**
 * BRSKI routes (digest §3.1): requestvoucher (also on the legacy EST path), voucher_status and
 * enrollstatus. Routes parse and answer; the authority decides.
 */
import type { X509Certificate } from 'node:crypto';
import { Router } from '@koa/router';
import type Koa from 'koa';
import type { Logger } from 'pino';
import { BrskiError } from '@brski/shared/errors';
import { assertContentType, peerCertificates, readBody } from '@brski/shared/http/middleware';
import { MEDIA, VOUCHER_MEDIA_TYPE, requireVoucherFormat } from '@brski/shared/media';
import { parseStatusTelemetry } from '@brski/shared/voucher/telemetry';
import { identifyPledge, type Manufacturer } from '../authority/identity.ts';
import type { VoucherService } from '../authority/voucher-service.ts';
import type { AuditPolicyService } from '../authority/audit-policy.ts';
import type { DomainCa } from '../ca/domain-ca.ts';
import type { PledgeRecord, RegistrarStore, StatusReport } from '../store/types.ts';

export interface BrskiRouteDeps {
  vouchers: VoucherService;
  store: RegistrarStore;
  ca: DomainCa;
  manufacturers: readonly Manufacturer[];
  bodyLimit: number;
  logger: Logger;
  now: () => Date;
  /** Audit-log policy started after voucher success (the registrar's one AuditPolicyService). */
  audit: AuditPolicyService;
}

const log = (ctx: Koa.Context, fallback: Logger): Logger => (ctx.state['log'] as Logger | undefined) ?? fallback;

export type TelemetryKind = 'voucherStatus' | 'enrollStatus';
export type TelemetryDeps = Pick<BrskiRouteDeps, 'store' | 'ca' | 'manufacturers' | 'now' | 'audit'>;

/**
 * Who sent the telemetry: our current LDevID (after the reconnect) or a trusted IDevID; 401 otherwise.
 * `authenticated` means the credential is the one on record for the serial: the IDevID the pledge
 * record names, or an LDevID of ours that is neither revoked nor superseded.
 */
async function telemetrySender(d: TelemetryDeps, presented: readonly X509Certificate[]): Promise<{ serial: string; authenticated: boolean; via: 'ldevid' | 'idevid'; pledge?: PledgeRecord }> {
  const leaf = presented[0];
  if (!leaf) throw new BrskiError('unauthenticated', 'a TLS client certificate is required');
  const rec = await d.store.getCertificate(leaf.serialNumber.toUpperCase());
  if (rec && Buffer.from(rec.der).equals(leaf.raw) && leaf.checkIssued(d.ca.certificate) && leaf.verify(d.ca.certificate.publicKey)) {
    const pledge = await d.store.getPledge(rec.pledgeSerial);
    const current = rec.revokedAt === undefined && rec.supersededBy === undefined;
    return { serial: rec.pledgeSerial, authenticated: current, via: 'ldevid', ...(pledge ? { pledge } : {}) };
  }
  const p = identifyPledge(presented, d.manufacturers, d.now());
  const stored = await d.store.getPledge(p.serial);
  if (!stored) throw new BrskiError('not-found', `no onboarding in progress for ${p.serial}`);
  return { serial: p.serial, authenticated: stored.idevidFingerprint === p.fingerprint, via: 'idevid', pledge: stored };
}

/**
 * voucher_status / enrollstatus (digest §7): identifies the sender, parses the report, logs it
 * (unknown keys, version > 1, whether the session was authenticated with a matching certificate)
 * and records it. Shared by HTTPS and CoAPS (`/vs`, `/es`).
 *
 * Only the pledge itself changes its record: a report from a same-serial stranger (another IDevID)
 * or on a revoked or superseded LDevID is logged and kept as an event, and nothing else. A failure
 * report marks the pledge failed, except a revoked one: only an operator moves a device out of
 * `revoked` (otherwise a revoked device, or a clone, could reset its way back to a voucher).
 */
export async function recordTelemetry(d: TelemetryDeps, kind: TelemetryKind, body: Uint8Array, type: 'json' | 'cbor',
  presented: readonly X509Certificate[], logger: Logger): Promise<void> {
  const who = await telemetrySender(d, presented);
  const t = parseStatusTelemetry(body, type);
  const report: StatusReport = {
    at: d.now().toISOString(), version: t.version, status: t.status, authenticated: who.authenticated,
    ...(t.reason === undefined ? {} : { reason: t.reason }), ...(t.reasonContext === undefined ? {} : { reasonContext: t.reasonContext }),
  };
  const l = logger.child({ serial: who.serial, telemetry: kind, via: who.via, authenticated: who.authenticated });
  if (t.unknownKeys.length > 0) l.info({ unknownKeys: t.unknownKeys }, 'status telemetry carries unknown keys');
  if (t.version > 1) l.warn({ version: t.version }, 'status telemetry version > 1: newer pledge protocol, operator attention needed');
  if (t.status) l.info('pledge reports success');
  else l.warn({ reason: t.reason, reasonContext: t.reasonContext }, 'pledge reports failure');
  const revoked = who.pledge?.state === 'revoked';
  if (!who.authenticated) {
    l.warn({ alert: true }, 'status telemetry from a credential that is not the one on record for this serial: logged, record unchanged');
  } else if (revoked) {
    l.warn('status telemetry from a revoked device: recorded, state stays revoked');
  }
  const failed = !t.status && !revoked;
  const patch = !who.authenticated ? {} : {
    [kind]: report,
    ...(failed ? { state: 'failed' as const, lastError: `${kind === 'voucherStatus' ? 'voucher' : 'enroll'} status: ${t.reason ?? 'failure'}` } : {}),
  };
  await d.store.updatePledge(who.serial, patch, { type: kind === 'voucherStatus' ? 'voucher-status' : 'enroll-status',
    detail: { status: t.status, ...(t.reason ? { reason: t.reason } : {}), via: who.via, authenticated: who.authenticated } });
  // Digest §2.1 h: the audit log is fetched after the pledge accepted its voucher — only for the
  // IDevID the voucher went to (a same-serial stranger must not trigger MASA traffic).
  if (kind === 'voucherStatus' && t.status && who.authenticated && !revoked) d.audit.afterVoucherStatus(who.serial);
}

export function brskiRoutes(d: BrskiRouteDeps): Router {
  const router = new Router();

  const requestVoucher: Koa.Middleware = async (ctx) => {
    const format = requireVoucherFormat(ctx.get('content-type') || undefined);
    const body = await readBody(ctx, d.bodyLimit);
    if (body.length === 0) throw new BrskiError('malformed', 'empty voucher-request');
    try {
      const relayed = await d.vouchers.requestVoucher(format, new Uint8Array(body), peerCertificates(ctx), ctx.get('accept') || undefined);
      ctx.status = 200;
      ctx.type = VOUCHER_MEDIA_TYPE[relayed.format];
      ctx.body = Buffer.from(relayed.voucher);
    } catch (err) {
      // Proximity mismatch: someone relayed the pledge here; answer 401 and drop the connection (RFC 8995 §5.3).
      if (err instanceof BrskiError && err.code === 'proximity-mismatch') ctx.set('Connection', 'close');
      throw err;
    }
  };
  router.post('/.well-known/brski/requestvoucher', requestVoucher);
  router.post('/.well-known/est/requestvoucher', requestVoucher);

  const telemetry = (kind: TelemetryKind): Koa.Middleware => async (ctx) => {
    const type = assertContentType(ctx, [MEDIA.json, MEDIA.cbor]);
    const body = await readBody(ctx, Math.min(d.bodyLimit, 16 * 1024));
    await recordTelemetry(d, kind, new Uint8Array(body), type === MEDIA.cbor ? 'cbor' : 'json', peerCertificates(ctx), log(ctx, d.logger));
    ctx.status = 200;
    ctx.body = '';
  };
  router.post('/.well-known/brski/voucher_status', telemetry('voucherStatus'));
  router.post('/.well-known/brski/enrollstatus', telemetry('enrollStatus'));
  return router;
}

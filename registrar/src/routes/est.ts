/**
 * EST routes (RFC 7030 / 8951, digest §4): cacerts, csrattrs, simpleenroll, simplereenroll,
 * and the CRL. Bodies are base64 of DER both ways; Content-Transfer-Encoding is ignored.
 */
import { Router } from '@koa/router';
import type Koa from 'koa';
import { BrskiError } from '@brski/shared/errors';
import { assertContentType, peerCertificates, readBody } from '@brski/shared/http/middleware';
import { MEDIA } from '@brski/shared/media';
import { decodeBase64Body, encodeBase64Body } from '@brski/shared/est/base64-body';
import { encodeCertsOnly } from '@brski/shared/est/certs-only';
import { identifyPledge, type Manufacturer, type PledgeIdentity } from '../authority/identity.ts';
import type { AuditPolicyService } from '../authority/audit-policy.ts';
import type { DomainCa } from '../ca/domain-ca.ts';
import type { RegistrarStore } from '../store/types.ts';

export interface EstRouteDeps {
  ca: DomainCa;
  store: RegistrarStore;
  manufacturers: readonly Manufacturer[];
  /** simpleenroll allowed this long after the voucher. */
  voucherWindowSeconds: number;
  bodyLimit: number;
  now: () => Date;
  /** Audit-log policy gate (the registrar's one AuditPolicyService; mode `off` lets everything through). */
  audit: AuditPolicyService;
}

export const CRL_PATH = '/.well-known/est/crl';

export type EnrollmentGateDeps = Pick<EstRouteDeps, 'store' | 'voucherWindowSeconds' | 'now' | 'audit'>;

/**
 * No voucher, no certificate: only the IDevID whose voucher flow succeeded within the window may
 * enroll (revoked devices never), and in audit-policy `enforce` mode only once the MASA audit log
 * passed (406 after a violation, 202 while it is being fetched). Shared by the HTTPS simpleenroll
 * and the CoAPS `/sen`.
 */
export async function authorizeEnrollment(d: EnrollmentGateDeps, pledge: PledgeIdentity): Promise<void> {
  const rec = await d.store.getPledge(pledge.serial);
  if (rec?.state === 'revoked') throw new BrskiError('device-revoked', `device ${pledge.serial} is revoked`);
  const issuedAt = rec?.voucherIssuedAt ? Date.parse(rec.voucherIssuedAt) : NaN;
  if (!rec || rec.idevidFingerprint !== pledge.fingerprint || !Number.isFinite(issuedAt)) {
    throw new BrskiError('no-voucher', `no voucher was issued to this IDevID (${pledge.serial}); request a voucher first`);
  }
  if (d.now().getTime() - issuedAt > d.voucherWindowSeconds * 1000) {
    throw new BrskiError('no-voucher', `the voucher for ${pledge.serial} is older than the ${d.voucherWindowSeconds} s enrollment window`);
  }
  d.audit.assertMayEnroll(rec);
}

export function estRoutes(d: EstRouteDeps): Router {
  const router = new Router({ prefix: '/.well-known/est' });

  router.get('/cacerts', (ctx) => {
    ctx.type = MEDIA.pkcs7;
    ctx.body = encodeBase64Body(encodeCertsOnly(d.ca.cacerts()));
  });

  router.get('/csrattrs', (ctx) => {
    ctx.type = MEDIA.csrattrs;
    ctx.body = encodeBase64Body(d.ca.csrAttrs());
  });

  async function csrFrom(ctx: Koa.Context): Promise<Uint8Array> {
    assertContentType(ctx, [MEDIA.pkcs10]);
    const body = await readBody(ctx, d.bodyLimit);
    return decodeBase64Body(body);
  }

  function answer(ctx: Koa.Context, der: Uint8Array): void {
    ctx.status = 200;
    ctx.type = MEDIA.pkcs7CertsOnly;
    ctx.body = encodeBase64Body(der);
  }

  // No voucher, no certificate (authorizeEnrollment).
  router.post('/simpleenroll', async (ctx) => {
    const pledge = identifyPledge(peerCertificates(ctx), d.manufacturers, d.now());
    const csr = await csrFrom(ctx);
    await authorizeEnrollment(d, pledge);
    const cert = await d.ca.enroll(csr, pledge.serial, pledge.idevid);
    answer(ctx, encodeCertsOnly([cert]));
  });

  router.post('/simplereenroll', async (ctx) => {
    const leaf = peerCertificates(ctx)[0];
    if (!leaf) throw new BrskiError('unauthenticated', 'simplereenroll needs the current LDevID as TLS client certificate');
    await d.ca.currentRecordFor(leaf); // authenticate before reading the body
    const csr = await csrFrom(ctx);
    const cert = await d.ca.reenroll(csr, leaf);
    answer(ctx, encodeCertsOnly([cert]));
  });

  router.get('/crl', async (ctx) => {
    ctx.type = MEDIA.pkixCrl;
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = Buffer.from(await d.ca.crl());
  });
  return router;
}

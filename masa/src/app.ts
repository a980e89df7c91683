/**
 * The MASA's koa app. Routes only parse, call the authority / factory / admin service, and
 * answer; every refusal is a BrskiError that errorHandler turns into its status with a
 * text/plain body and a log line (and counts in brski_refusals_total by reason).
 */
import Router from '@koa/router';
import Koa from 'koa';
import { BrskiError } from '@brski/shared/errors';
import { readBody } from '@brski/shared/http/body';
import { HealthChecks, healthRoutes } from '@brski/shared/http/health';
import { errorHandler, logOutcome, peerCertificates, requestLog, timeout } from '@brski/shared/http/middleware';
import { MEDIA } from '@brski/shared/media';
import type { Logger } from '@brski/shared/observability/logger';
import type { Metrics } from '@brski/shared/observability/metrics';
import { adminRoutes } from './admin/routes.ts';
import type { AdminService } from './admin/service.ts';
import type { VoucherAuthority } from './authority/authority.ts';
import type { FactoryIssuer } from './factory/issuer.ts';
import type { MasaStore } from './store/types.ts';

export interface MasaAppDeps {
  authority: VoucherAuthority;
  store: MasaStore;
  logger: Logger;
  metrics: Metrics;
  factory?: FactoryIssuer;
  limits: { bodyBytes: number; requestTimeoutMs: number };
}

const FACTORY_BODY_LIMIT = 16 * 1024;

export function createMasaApp(d: MasaAppDeps): Koa {
  const app = new Koa();
  app.proxy = false;
  app.use(requestLog({ logger: d.logger, metrics: d.metrics }));
  app.use(errorHandler({ logger: d.logger, metrics: d.metrics }));
  app.use(timeout({ ms: d.limits.requestTimeoutMs }));

  const checks = new HealthChecks().add('store', async () => {
    if (!(await d.store.ping())) throw new Error(`${d.store.kind} store not answering`);
  });
  const health = healthRoutes({ checks, metrics: d.metrics });
  app.use(health.routes()).use(health.allowedMethods());

  const brski = new Router({ prefix: '/.well-known/brski' });
  brski.post('/requestvoucher', async (ctx) => {
    // 415 / 406 before reading (or verifying) anything.
    d.authority.negotiate(ctx.get('content-type') || undefined, ctx.get('accept') || undefined);
    const body = await readBody(ctx, d.limits.bodyBytes);
    const v = await d.authority.requestVoucher({ contentType: ctx.get('content-type'), accept: ctx.get('accept') || undefined,
      body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength), peerChain: peerCertificates(ctx),
      report: (msg, fields) => logOutcome(ctx, msg, fields), deadline: ctx.state['deadline'] as number | undefined });
    ctx.status = 200;
    ctx.type = v.mediaType;
    ctx.body = Buffer.from(v.body.buffer, v.body.byteOffset, v.body.byteLength);
  });
  brski.post('/requestauditlog', async (ctx) => {
    d.authority.negotiate(ctx.get('content-type') || undefined, undefined);
    const body = await readBody(ctx, d.limits.bodyBytes);
    const log = await d.authority.requestAuditLog({ contentType: ctx.get('content-type'),
      body: new Uint8Array(body.buffer, body.byteOffset, body.byteLength), peerChain: peerCertificates(ctx) });
    ctx.status = 200;
    ctx.type = MEDIA.json;
    ctx.body = JSON.stringify(log);
  });
  app.use(brski.routes()).use(brski.allowedMethods());

  if (d.factory) {
    const factory = d.factory;
    const f = new Router({ prefix: '/factory' });
    f.post('/idevid', async (ctx) => {
      const type = ctx.get('content-type').split(';')[0]!.trim().toLowerCase();
      if (type !== MEDIA.json) throw new BrskiError('unsupported-media-type', 'factory: application/json expected');
      const raw = await readBody(ctx, FACTORY_BODY_LIMIT);
      let body: unknown;
      try { body = JSON.parse(raw.toString('utf8')); } catch { throw new BrskiError('malformed', 'factory: body is not JSON'); }
      const r = await factory.issue(peerCertificates(ctx), body);
      ctx.status = r.status === 'created' ? 201 : 200;
      ctx.body = { status: r.status, serialNumber: r.device.serial, certificate: Buffer.from(r.certificate).toString('base64'),
        chain: r.chain.map((c) => Buffer.from(c).toString('base64')), keyFingerprint: r.device.keyFingerprint, issuedAt: r.device.issuedAt };
    });
    // A station's own issuance report (quarterly reconciliation against shipped quantities).
    f.get('/report', async (ctx) => {
      const station = factory.station(peerCertificates(ctx));
      const now = new Date();
      const from = ctx.query['from'] ? new Date(String(ctx.query['from'])) : new Date(now.getTime() - 90 * 86_400_000);
      const to = ctx.query['to'] ? new Date(String(ctx.query['to'])) : now;
      if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) throw new BrskiError('malformed', 'from/to must be RFC 3339 dates');
      const records = await d.store.issuanceReport(station.id, from, to);
      ctx.body = { station: station.id, from: from.toISOString(), to: to.toISOString(), count: records.length, records };
    });
    app.use(f.routes()).use(f.allowedMethods());
  }

  return app;
}

/** The admin API on its own listener (docs/design/config.md: admin.host/port). */
export function createAdminApp(service: AdminService, token: string, store: MasaStore, logger: Logger, metrics: Metrics): Koa {
  const app = new Koa();
  app.use(requestLog({ logger, metrics }));
  app.use(errorHandler({ logger, metrics }));
  const checks = new HealthChecks().add('store', async () => {
    if (!(await store.ping())) throw new Error(`${store.kind} store not answering`);
  });
  const health = healthRoutes({ checks });
  app.use(health.routes()).use(health.allowedMethods());
  const a = adminRoutes(service, token);
  app.use(a.routes()).use(a.allowedMethods());
  return app;
}

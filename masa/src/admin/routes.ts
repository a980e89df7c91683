/**
 * Token-authenticated JSON admin API under /admin (routes only parse and call AdminService).
 * The token is compared in constant time over SHA-256 digests; it is never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import Router from '@koa/router';
import type Koa from 'koa';
import { BrskiError } from '@brski/shared/errors';
import { readBody } from '@brski/shared/http/body';
import { MEDIA } from '@brski/shared/media';
import { z } from 'zod';
import { OWNERSHIP_POLICIES } from '../store/types.ts';
import type { AdminService } from './service.ts';

const policySchema = z.object({ policy: z.enum(OWNERSHIP_POLICIES as unknown as ['claimed', 'first-use', 'open']).nullable() }).strict();
const domainSchema = z.object({ domainCert: z.string().optional(), domainId: z.string().optional() }).strict();
const revokeSchema = z.object({ reason: z.string().min(1).max(256), revoked: z.boolean().default(true) }).strict();
const importSchema = z.object({ certificate: z.string().min(1), productLine: z.string().min(1).max(64),
  location: z.string().max(128).optional(), policy: z.enum(OWNERSHIP_POLICIES as unknown as ['claimed', 'first-use', 'open']).optional() }).strict();

const ADMIN_BODY_LIMIT = 64 * 1024;

async function json<T extends z.ZodType>(ctx: Koa.Context, schema: T): Promise<z.output<T>> {
  const type = ctx.get('content-type').split(';')[0]!.trim().toLowerCase();
  if (type !== MEDIA.json) throw new BrskiError('unsupported-media-type', 'admin API takes application/json');
  const raw = await readBody(ctx, ADMIN_BODY_LIMIT);
  let value: unknown;
  try { value = JSON.parse(raw.toString('utf8')); } catch { throw new BrskiError('malformed', 'body is not JSON'); }
  const r = schema.safeParse(value);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new BrskiError('malformed', `${i.path.join('.') || 'body'}: ${i.message}`);
  }
  return r.data;
}

function digest(s: string): Buffer { return createHash('sha256').update(s, 'utf8').digest(); }

export function requireToken(token: string): Koa.Middleware {
  const expected = digest(token);
  return async (ctx, next) => {
    const m = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'));
    if (!m || !timingSafeEqual(digest(m[1]!), expected)) {
      ctx.set('WWW-Authenticate', 'Bearer realm="masa-admin"');
      throw new BrskiError('unauthenticated', 'admin API: missing or wrong bearer token');
    }
    await next();
  };
}

function parseDate(v: unknown, name: string, fallback: Date): Date {
  if (v === undefined) return fallback;
  const d = new Date(String(v));
  if (Number.isNaN(d.getTime())) throw new BrskiError('malformed', `${name} must be an RFC 3339 date`);
  return d;
}

export function adminRoutes(admin: AdminService, token: string): Router {
  const r = new Router({ prefix: '/admin' });
  r.use(requireToken(token));
  r.get('/devices/:serial', async (ctx) => { ctx.body = await admin.device(ctx.params['serial']!); });
  r.put('/devices/:serial', async (ctx) => {
    const b = await json(ctx, importSchema);
    const res = await admin.importDevice(ctx.params['serial']!, b.certificate, b.productLine, b.location, b.policy);
    ctx.status = res.status === 'created' ? 201 : 200;
    ctx.body = { status: res.status, device: res.device };
  });
  r.post('/devices/:serial/claims', async (ctx) => {
    ctx.body = { domainId: await admin.claim(ctx.params['serial']!, await json(ctx, domainSchema)) };
  });
  r.post('/devices/:serial/unclaim', async (ctx) => {
    ctx.body = { removed: await admin.unclaim(ctx.params['serial']!, await json(ctx, domainSchema)) };
  });
  r.post('/devices/:serial/revoke', async (ctx) => {
    const b = await json(ctx, revokeSchema);
    await admin.revoke(ctx.params['serial']!, b.reason, b.revoked);
    ctx.body = { serial: ctx.params['serial'], revoked: b.revoked };
  });
  r.put('/devices/:serial/policy', async (ctx) => {
    const b = await json(ctx, policySchema);
    await admin.setDevicePolicy(ctx.params['serial']!, b.policy);
    ctx.body = { serial: ctx.params['serial'], policy: b.policy };
  });
  r.put('/product-lines/:line/policy', async (ctx) => {
    const b = await json(ctx, policySchema);
    await admin.setProductLinePolicy(ctx.params['line']!, b.policy);
    ctx.body = { productLine: ctx.params['line'], policy: b.policy };
  });
  r.get('/devices/:serial/audit', async (ctx) => { ctx.body = await admin.audit(ctx.params['serial']!); });
  r.get('/factory/report', async (ctx) => {
    const now = new Date();
    const from = parseDate(ctx.query['from'], 'from', new Date(now.getTime() - 90 * 86_400_000));
    const to = parseDate(ctx.query['to'], 'to', now);
    const station = typeof ctx.query['station'] === 'string' ? ctx.query['station'] : undefined;
    ctx.body = await admin.report(station, from, to);
  });
  return r;
}

/**
 * Operator API (issue item 6), JSON over its own HTTPS listener, bearer-token authenticated:
 * pledges with state and timeline, approvals, admission mode and allowlist edits, issued
 * certificates, revocation, and the MASA audit log for a pledge with a verdict on foreign domains.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { Router } from '@koa/router';
import type Koa from 'koa';
import type { Logger } from 'pino';
import { z } from 'zod';
import { BrskiError } from '@brski/shared/errors';
import { readBody } from '@brski/shared/http/middleware';
import { PLEDGE_STATES, type RegistrarStore } from '../store/types.ts';
import type { DomainCa } from '../ca/domain-ca.ts';
import { POLICY_MODES, type AdmissionPolicy } from '../authority/admission.ts';
import type { AuditLogService } from './audit.ts';
import { decidePledge, pageOf, summarizeCertificate } from './decide.ts';

export interface AdminDeps {
  token: string;
  store: RegistrarStore;
  ca: DomainCa;
  audit: AuditLogService;
  now: () => Date;
  /** The admission policy the voucher service applies (the same object: a mode change here is enforced at once). */
  policy: AdmissionPolicy;
}

const REASONS = ['unspecified', 'keyCompromise', 'superseded', 'cessationOfOperation', 'affiliationChanged'] as const;
const revokeBody = z.object({ reason: z.enum(REASONS).default('unspecified') }).strict();
const allowBody = z.object({ entry: z.string().min(1).max(128).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces') }).strict();
const decideBody = z.object({ by: z.string().min(1).max(64).optional() }).strict();
const modeBody = z.object({ mode: z.enum(POLICY_MODES as [string, ...string[]]), by: z.string().min(1).max(64).optional() }).strict();

async function json<T extends z.ZodType>(ctx: Koa.Context, schema: T): Promise<z.output<T>> {
  const body = await readBody(ctx, 16 * 1024);
  let raw: unknown = {};
  if (body.length > 0) {
    try { raw = JSON.parse(body.toString('utf8')); } catch { throw new BrskiError('malformed', 'request body is not JSON'); }
  }
  const r = schema.safeParse(raw);
  if (!r.success) throw new BrskiError('malformed', r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '));
  return r.data;
}

/** Constant-time token check; compares digests so the length does not leak either. */
export function bearerAuth(token: string): Koa.Middleware {
  const want = createHash('sha256').update(token).digest();
  return async (ctx, next) => {
    const m = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'));
    const got = createHash('sha256').update(m?.[1] ?? '').digest();
    if (!m || !timingSafeEqual(want, got)) {
      ctx.set('WWW-Authenticate', 'Bearer realm="brski-registrar-admin"');
      throw new BrskiError('unauthenticated', 'admin API: missing or wrong bearer token');
    }
    await next();
  };
}

export function adminRoutes(d: AdminDeps): Router {
  const r = new Router({ prefix: '/admin' });
  r.use(bearerAuth(d.token));

  r.get('/pledges', async (ctx) => {
    const state = ctx.query['state'];
    if (state !== undefined && !(PLEDGE_STATES as readonly unknown[]).includes(state)) throw new BrskiError('malformed', `unknown state ${String(state)}`);
    const limit = Math.min(Number(ctx.query['limit'] ?? 100) || 100, 1000);
    const offset = Math.max(Number(ctx.query['offset'] ?? 0) || 0, 0);
    ctx.body = { pledges: await d.store.listPledges({ ...(state ? { state: state as (typeof PLEDGE_STATES)[number] } : {}), limit, offset }) };
  });

  r.get('/pledges/:serial', async (ctx) => {
    const serial = ctx.params['serial']!;
    const pledge = await d.store.getPledge(serial);
    if (!pledge) throw new BrskiError('not-found', `no pledge ${serial}`);
    const certificates = (await d.store.listCertificates(serial)).map(({ der: _der, ...rest }) => rest);
    ctx.body = { pledge, events: await d.store.pledgeEvents(serial), certificates, approval: (await d.store.getApproval(serial)) ?? null };
  });

  r.get('/approvals', async (ctx) => {
    const decision = ctx.query['decision'];
    if (decision !== undefined && !['pending', 'approved', 'denied'].includes(String(decision))) throw new BrskiError('malformed', 'decision must be pending, approved or denied');
    ctx.body = { approvals: await d.store.listApprovals(decision as 'pending' | undefined) };
  });

  const decide = (decision: 'approved' | 'denied'): Koa.Middleware => async (ctx) => {
    const { by } = await json(ctx, decideBody);
    ctx.body = { approval: await decidePledge({ store: d.store, now: d.now, log: ctx.state['log'] as Logger | undefined }, ctx.params['serial']!, decision, by ?? 'admin') };
  };
  r.post('/pledges/:serial/approve', decide('approved'));
  r.post('/pledges/:serial/deny', decide('denied'));

  r.get('/allowlist', async (ctx) => { ctx.body = { allowlist: await d.store.listAllowlist() }; });
  r.post('/allowlist', async (ctx) => {
    const { entry } = await json(ctx, allowBody);
    const added = await d.store.addAllowlist(entry);
    ctx.status = added ? 201 : 200;
    ctx.body = { entry, added };
  });
  r.delete('/allowlist/:entry', async (ctx) => {
    const removed = await d.store.removeAllowlist(ctx.params['entry']!);
    if (!removed) throw new BrskiError('not-found', 'no such allowlist entry');
    ctx.body = { removed: true };
  });

  // --- admission mode: config gives the initial value; an operator setting lives in the store.
  r.get('/policy', async (ctx) => {
    const p = d.policy;
    ctx.body = {
      mode: await p.currentMode(true),
      allowlist: { config: p.config.allowlist, operator: await d.store.listAllowlist() },
      refusalStatus: p.config.refusalStatus,
      changes: await d.store.listPolicyChanges(50),
    };
  });
  r.put('/policy/mode', async (ctx) => {
    const { mode, by } = await json(ctx, modeBody);
    ctx.body = await d.policy.setMode(mode as (typeof POLICY_MODES)[number], { by: by ?? 'admin', via: 'admin-api', at: d.now(), log: ctx.state['log'] as Logger | undefined });
  });
  // Back to the mode registrar.yaml sets.
  r.delete('/policy/mode', async (ctx) => {
    const { by } = await json(ctx, decideBody);
    ctx.body = await d.policy.setMode(null, { by: by ?? 'admin', via: 'admin-api', at: d.now(), log: ctx.state['log'] as Logger | undefined });
  });

  r.get('/certificates', async (ctx) => {
    const { offset, limit } = pageOf(ctx.query as { offset?: unknown; limit?: unknown });
    const [total, certs] = await Promise.all([d.store.countIssuedCertificates(), d.store.listIssuedCertificates({ offset, limit })]);
    ctx.body = { total, offset, limit, certificates: certs.map(summarizeCertificate) };
  });

  r.post('/certificates/:serial/revoke', async (ctx) => {
    const { reason } = await json(ctx, revokeBody);
    const serial = ctx.params['serial']!;
    if (!(await d.store.getCertificate(serial.toUpperCase()))) throw new BrskiError('not-found', `no certificate ${serial}`);
    const revoked = await d.ca.revoke(serial, reason);
    ctx.body = { serialNumber: serial.toUpperCase(), revoked };
  });

  r.post('/pledges/:serial/revoke', async (ctx) => {
    const { reason } = await json(ctx, revokeBody);
    const serial = ctx.params['serial']!;
    if (!(await d.store.getPledge(serial))) throw new BrskiError('not-found', `no pledge ${serial}`);
    ctx.body = { serial, revokedCertificates: await d.ca.revokeDevice(serial, reason === 'unspecified' ? 'cessationOfOperation' : reason) };
  });

  r.post('/pledges/:serial/auditlog', async (ctx) => {
    ctx.body = await d.audit.fetch(ctx.params['serial']!);
  });
  return r;
}

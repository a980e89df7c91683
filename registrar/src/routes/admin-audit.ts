/**
 * Admin endpoints of the audit-log policy (same listener and bearer token as admin/routes.ts):
 * the verdict recorded for a pledge, and the operator's override that lifts an enforce-mode block.
 */
import { Router } from '@koa/router';
import { z } from 'zod';
import { BrskiError } from '@brski/shared/errors';
import { readBody } from '@brski/shared/http/middleware';
import { bearerAuth } from '../admin/routes.ts';
import { auditStateOf, type AuditPolicyService } from '../authority/audit-policy.ts';
import type { RegistrarStore } from '../store/types.ts';

const clearBody = z.object({ by: z.string().min(1).max(64).optional() }).strict();

export function adminAuditRoutes(d: { token: string; store: RegistrarStore; policy: AuditPolicyService }): Router {
  const r = new Router({ prefix: '/admin' });
  r.use(bearerAuth(d.token));

  r.get('/pledges/:serial/audit', async (ctx) => {
    const serial = ctx.params['serial']!;
    const rec = await d.store.getPledge(serial);
    if (!rec) throw new BrskiError('not-found', `no pledge ${serial}`);
    ctx.body = { serial, mode: d.policy.mode, voucherIssuedAt: rec.voucherIssuedAt ?? null, audit: auditStateOf(rec) ?? null };
  });

  r.post('/pledges/:serial/audit/clear', async (ctx) => {
    const body = await readBody(ctx, 4096);
    let raw: unknown = {};
    if (body.length > 0) {
      try { raw = JSON.parse(body.toString('utf8')); } catch { throw new BrskiError('malformed', 'request body is not JSON'); }
    }
    const parsed = clearBody.safeParse(raw);
    if (!parsed.success) throw new BrskiError('malformed', parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; '));
    const serial = ctx.params['serial']!;
    ctx.body = { serial, audit: await d.policy.clear(serial, parsed.data.by ?? 'admin') };
  });
  return r;
}

/**
 * The operator web console, mounted at /console on the registrar's admin listener: server-rendered
 * HTML (html.ts) with htmx for live polling and fragments. Every page and fragment needs a login
 * session (the admin token exchanged for an HttpOnly, Secure, SameSite=Strict cookie); every
 * state-changing request needs the CSRF token; every answer carries a strict CSP. Operations call
 * the same functions / store / CA methods as the admin API (actions.ts).
 */
import type { Logger } from 'pino';
import { Router } from '@koa/router';
import type Koa from 'koa';
import { BrskiError, isBrskiError } from '@brski/shared/errors';
import type { AuditVerdict } from '../admin/audit.ts';
import type { AdmissionPolicy, PolicyMode } from '../authority/admission.ts';
import { pageOf } from '../admin/decide.ts';
import type { Manufacturer } from '../authority/identity.ts';
import type { DomainCa } from '../ca/domain-ca.ts';
import { PLEDGE_STATES, type PledgeState, type RegistrarStore } from '../store/types.ts';
import { addAllowlist, checkSerial, decide, parseReason, removeAllowlist, revokeCertificate, revokeDevice, setMode, type ActionDeps } from './actions.ts';
import { loadAssets } from './assets.ts';
import { formBody, requireCsrf, requireSession, securityHeaders } from './guard.ts';
import { html, type SafeHtml } from './html.ts';
import { MasaProbe, type ClientIdentity } from './masa-probe.ts';
import { LOGIN_COOKIE, LoginThrottle, SESSION_COOKIE, SESSION_SECONDS, SessionKeys } from './session.ts';
import { countByState, filterDevices, manufacturersOf, onboardingsPerMinute, recentFailures, SnapshotCache, type DeviceFilter } from './stats.ts';
import { approvalsBody, approvalsPage } from './views/approvals.ts';
import { certificatesPage } from './views/certificates.ts';
import { dashboardBody, dashboardPage, type DashboardData } from './views/dashboard.ts';
import { auditLogFragment, deviceTable, devicePage, devicesPage } from './views/devices.ts';
import { flashBox, frame, type FrameOptions, type Page } from './views/layout.ts';
import { loginPage } from './views/login.ts';
import { policyPage } from './views/policy.ts';
import { randomBytes } from 'node:crypto';

export interface ConsoleDeps {
  /** The admin token: the login secret, and the root of the session/CSRF keys. */
  token: string;
  store: RegistrarStore;
  ca: DomainCa;
  audit: { fetch(serial: string): Promise<AuditVerdict> };
  /** Admission configuration (config.policy): the configured (initial) mode and the read-only config-file allowlist. */
  policy: { mode: PolicyMode; allowlist: readonly string[]; refusalStatus?: 403 | 404; approvalRetryAfter?: number };
  /** The admission policy the voucher service applies (the same object; mode changes go through it). */
  admission: AdmissionPolicy;
  now: () => Date;
  /** Registrar domain name, shown in the title bar. */
  domain?: string;
  /** For MASA reachability: configured overrides and TLS anchors (material.manufacturers). */
  manufacturers?: readonly Manufacturer[];
  /** Registrar TLS client identity for the MASA probe (material.tlsKeyPem / tlsCertPem). */
  masaClient?: ClientIdentity;
  logger?: Logger;
}

const DEVICES_SHOWN = 200;
const CERTS_PER_PAGE = 100;

const FLASH: Record<string, (item: string) => string> = {
  revoked: (i) => `Certificate ${i} revoked; the CRL was regenerated.`,
  'already-revoked': (i) => `Certificate ${i} was already revoked.`,
  'device-revoked': (i) => `Device ${i} revoked with all its certificates.`,
  approved: (i) => `Approved: ${i}.`,
  denied: (i) => `Denied: ${i}.`,
  'allow-added': (i) => `Added ${i} to the allowlist.`,
  'allow-exists': (i) => `${i} was already on the allowlist.`,
  'allow-removed': (i) => `Removed ${i} from the allowlist.`,
  'mode-set': (i) => `Admission mode is now ${i}.`,
  'mode-unchanged': (i) => `Admission mode was already ${i}; nothing changed.`,
};

function flashFrom(ctx: Koa.Context): FrameOptions['flash'] {
  const code = String(ctx.query['flash'] ?? '');
  const f = FLASH[code];
  return f ? { kind: 'ok', text: f(String(ctx.query['item'] ?? '').slice(0, 300)) } : undefined;
}

const see = (ctx: Koa.Context, path: string, flash?: string, item?: string): void => {
  ctx.status = 303;
  ctx.redirect(flash ? `${path}?flash=${encodeURIComponent(flash)}&item=${encodeURIComponent(item ?? '')}` : path);
};

/** Only local console paths are accepted as the post-login destination (no open redirect). */
export function safeNext(v: string | undefined | null): string {
  // Segments may not start with a dot (no ./.. traversal) nor carry escapes that could decode to one.
  return v && /^\/console(\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*$/.test(v) ? v : '/console/dashboard';
}

export function consoleRoutes(d: ConsoleDeps): Router {
  const keys = new SessionKeys(d.token);
  const throttle = new LoginThrottle();
  const snapshots = new SnapshotCache(d.store, d.now);
  const probe = new MasaProbe({ manufacturers: d.manufacturers ?? [], now: d.now, ...(d.masaClient ? { client: d.masaClient } : {}) });
  const assets = loadAssets();
  const domain = d.domain ?? 'registrar';
  const admission = d.admission;
  const r = new Router({ prefix: '/console' });

  const cookieOpts = (maxAgeS: number) => ({ httpOnly: true, secure: true, sameSite: 'strict' as const, path: '/', maxAge: maxAgeS * 1000, overwrite: true });
  const send = (ctx: Koa.Context, body: SafeHtml, status = 200) => {
    ctx.status = status;
    ctx.type = 'text/html; charset=utf-8';
    ctx.set('Cache-Control', 'no-store');
    ctx.body = body.value;
  };
  const csrf = (ctx: Koa.Context) => keys.csrfToken(ctx.state.consoleSession!);
  const page = (ctx: Koa.Context, p: Page, title: string, body: SafeHtml, flash = flashFrom(ctx)) =>
    send(ctx, frame({ title, page: p, csrf: csrf(ctx), domain, ...(flash ? { flash } : {}) }, body));

  // Errors become HTML (a page, or a fragment for htmx) with the status of the BrskiError.
  r.use(securityHeaders());
  r.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!isBrskiError(err)) throw err;
      const log = (ctx.state['log'] as Logger | undefined) ?? d.logger;
      log?.warn({ code: err.code, reason: err.message, path: ctx.path }, 'console request refused');
      const box = flashBox({ kind: 'error', text: err.message });
      const s = ctx.state.consoleSession;
      if (ctx.get('hx-request') || !s) send(ctx, ctx.get('hx-request') ? box : frame({ title: 'Error', domain }, html`${box}<p><a href="/console/login">Log in</a></p>`), err.httpStatus);
      else send(ctx, frame({ title: 'Error', page: 'dashboard', csrf: csrf(ctx), domain, flash: { kind: 'error', text: err.message } },
        html`<p><a href="/console/dashboard">Back to the dashboard</a></p>`), err.httpStatus);
    }
  });

  // Static assets: public code and styles (the login page needs them), no secrets.
  r.get('/static/:name', async (ctx) => {
    const a = assets.get(ctx.params['name']!);
    if (!a) throw new BrskiError('not-found', 'no such asset');
    ctx.set('ETag', a.etag);
    ctx.set('Cache-Control', 'no-cache');
    if (ctx.get('if-none-match') === a.etag) { ctx.status = 304; return; }
    ctx.type = a.type;
    ctx.body = a.body;
  });

  // --- login / logout ---------------------------------------------------------------------
  r.get('/login', async (ctx) => {
    // Login CSRF: a per-browser value in a SameSite=Strict cookie, echoed by the form.
    const loginCsrf = randomBytes(18).toString('base64url');
    ctx.cookies.set(LOGIN_COOKIE, loginCsrf, cookieOpts(600));
    const next = typeof ctx.query['next'] === 'string' ? safeNext(ctx.query['next']) : undefined;
    send(ctx, loginPage({ domain, loginCsrf, ...(next ? { next } : {}) }));
  });

  r.post('/login', formBody(4096), async (ctx) => {
    const form = ctx.state.form!;
    const site = ctx.get('sec-fetch-site');
    const cookie = ctx.cookies.get(LOGIN_COOKIE);
    const retry = (status: number, error: string) => {
      const loginCsrf = randomBytes(18).toString('base64url');
      ctx.cookies.set(LOGIN_COOKIE, loginCsrf, cookieOpts(600));
      send(ctx, loginPage({ domain, loginCsrf, error, next: safeNext(form.get('next')) }), status);
    };
    if ((site && site !== 'same-origin') || !cookie || cookie !== form.get('_login')) return retry(403, 'The login form expired; please try again.');
    const now = d.now().getTime();
    if (throttle.blocked(now)) { ctx.set('Retry-After', '60'); return retry(429, 'Too many failed logins; wait a minute.'); }
    if (!keys.checkToken(form.get('token') ?? '')) {
      throttle.fail(now);
      (ctx.state['log'] as Logger | undefined ?? d.logger)?.warn({ path: ctx.path }, 'console login failed');
      return retry(401, 'Wrong admin token.');
    }
    const { cookie: value } = keys.issue(now);
    ctx.cookies.set(SESSION_COOKIE, value, cookieOpts(SESSION_SECONDS));
    ctx.cookies.set(LOGIN_COOKIE, '', { ...cookieOpts(0), maxAge: 0 });
    see(ctx, safeNext(form.get('next')));
  });

  // Everything below needs a session; everything that changes state needs the CSRF token.
  r.use(requireSession(keys, d.now));
  r.use(formBody());
  r.use(requireCsrf(keys));

  r.post('/logout', async (ctx) => {
    keys.revoke(ctx.state.consoleSession!, d.now().getTime());
    ctx.cookies.set(SESSION_COOKIE, '', { ...cookieOpts(0), maxAge: 0 });
    see(ctx, '/console/login');
  });

  r.get('/', async (ctx) => see(ctx, '/console/dashboard'));

  // --- dashboard ------------------------------------------------------------------------------
  async function dashboard(): Promise<DashboardData> {
    const snap = await snapshots.get();
    const counts = countByState(snap.pledges);
    const [pending, masas, mode] = await Promise.all([d.store.listApprovals('pending'), probe.status(snap.pledges), admission.currentMode()]);
    return {
      at: snap.at, perMinute: onboardingsPerMinute(snap.pledges, snap.at), counts, total: snap.pledges.length,
      pendingApprovals: pending.length, failures: recentFailures(snap.pledges, snap.at), masas, truncated: snap.truncated, policyMode: mode.mode,
    };
  }
  r.get('/dashboard', async (ctx) => page(ctx, 'dashboard', 'Dashboard', dashboardPage(await dashboard())));
  r.get('/dashboard/live', async (ctx) => send(ctx, dashboardBody(await dashboard())));

  // --- devices --------------------------------------------------------------------------------
  function filterOf(ctx: Koa.Context): DeviceFilter {
    const q = (k: string) => { const v = ctx.query[k]; return typeof v === 'string' && v !== '' ? v.slice(0, 128) : undefined; };
    const state = q('state');
    if (state !== undefined && !(PLEDGE_STATES as readonly string[]).includes(state)) throw new BrskiError('malformed', `unknown state ${state}`);
    const serial = q('serial');
    const manufacturer = q('manufacturer');
    return { ...(state ? { state: state as PledgeState } : {}), ...(serial ? { serial } : {}), ...(manufacturer ? { manufacturer } : {}) };
  }
  r.get('/devices', async (ctx) => {
    const f = filterOf(ctx);
    const snap = await snapshots.get();
    page(ctx, 'devices', 'Devices', devicesPage(filterDevices(snap.pledges, f), f, manufacturersOf(snap.pledges), DEVICES_SHOWN));
  });
  r.get('/devices/table', async (ctx) => {
    const f = filterOf(ctx);
    send(ctx, deviceTable(filterDevices((await snapshots.get()).pledges, f), f, DEVICES_SHOWN));
  });
  r.get('/devices/:serial', async (ctx) => {
    const serial = checkSerial(ctx.params['serial']!);
    const pledge = await d.store.getPledge(serial);
    if (!pledge) throw new BrskiError('not-found', `no device ${serial}`);
    const [events, certificates, approval, voucher] = await Promise.all([
      d.store.pledgeEvents(serial), d.store.listCertificates(serial), d.store.getApproval(serial), d.store.getVoucher(serial)]);
    page(ctx, 'devices', serial, devicePage({ pledge, events, certificates, ...(approval ? { approval } : {}), ...(voucher ? { voucher } : {}) }, csrf(ctx)));
  });
  r.post('/devices/:serial/auditlog', async (ctx) => {
    const serial = checkSerial(ctx.params['serial']!);
    try {
      send(ctx, auditLogFragment(await d.audit.fetch(serial)));
    } catch (err) {
      if (!isBrskiError(err)) throw err;
      send(ctx, flashBox({ kind: 'error', text: `Audit log not available: ${err.message}` }));
    }
  });
  r.post('/devices/:serial/revoke', async (ctx) => {
    const serial = checkSerial(ctx.params['serial']!);
    await revokeDevice(act(ctx), serial, parseReason(ctx.state.form?.get('reason') ?? undefined, 'cessationOfOperation'));
    snapshots.invalidate();
    see(ctx, `/console/devices/${encodeURIComponent(serial)}`, 'device-revoked', serial);
  });

  // --- approvals ------------------------------------------------------------------------------
  const act = (ctx: Koa.Context): ActionDeps => ({ store: d.store, ca: d.ca, now: d.now, log: (ctx.state['log'] as Logger | undefined) ?? d.logger });
  async function approvalLists() {
    const all = await d.store.listApprovals();
    const decided = all.filter((a) => a.decision !== 'pending').sort((a, b) => (b.decidedAt ?? '').localeCompare(a.decidedAt ?? '')).slice(0, 100);
    return { pending: all.filter((a) => a.decision === 'pending'), decided };
  }
  r.get('/approvals', async (ctx) => {
    const { pending, decided } = await approvalLists();
    page(ctx, 'approvals', 'Approvals', approvalsPage(pending, decided, csrf(ctx), (await admission.currentMode(true)).mode));
  });
  r.get('/approvals/live', async (ctx) => {
    const { pending, decided } = await approvalLists();
    send(ctx, approvalsBody(pending, decided, csrf(ctx)));
  });
  r.post('/approvals', async (ctx) => {
    const form = ctx.state.form!;
    const decision = form.get('decision');
    if (decision !== 'approved' && decision !== 'denied') throw new BrskiError('malformed', 'decision must be approved or denied');
    const serials = [...new Set(form.getAll('serial'))];
    if (serials.length === 0) throw new BrskiError('malformed', 'select at least one pledge');
    if (serials.length > 500) throw new BrskiError('malformed', 'at most 500 pledges per decision');
    serials.forEach(checkSerial);
    for (const s of serials) await decide(act(ctx), s, decision, 'console');
    snapshots.invalidate();
    see(ctx, '/console/approvals', decision, serials.length > 5 ? `${serials.length} pledges` : serials.join(', '));
  });

  // --- certificates ---------------------------------------------------------------------------
  // Paged over the store's issuance log, newest first. A search is an exact lookup (certificate
  // serial, or device serial) rather than a substring scan, so it costs the same at any fleet size.
  r.get('/certificates', async (ctx) => {
    const q = typeof ctx.query['q'] === 'string' ? ctx.query['q'].trim().slice(0, 128) : '';
    const crl = await d.store.getCrl();
    if (q) {
      const certSerial = q.replace(/[:\s]/g, '').toUpperCase();
      const [byCert, byDevice] = await Promise.all([
        /^[0-9A-F]{1,64}$/.test(certSerial) ? d.store.getCertificate(certSerial) : undefined,
        /^[\x21-\x7e]{1,128}$/.test(q) ? d.store.listCertificates(q) : [],
      ]);
      const certs = [...(byCert ? [byCert] : []), ...byDevice.filter((c) => c.serialNumber !== byCert?.serialNumber)]
        .sort((a, b) => b.issuedAt.localeCompare(a.issuedAt));
      page(ctx, 'certificates', 'Certificates', certificatesPage(certs, crl, csrf(ctx), { q, offset: 0, limit: certs.length, total: certs.length }));
      return;
    }
    const { offset, limit } = pageOf(ctx.query as { offset?: unknown; limit?: unknown }, CERTS_PER_PAGE, CERTS_PER_PAGE);
    const [total, certs] = await Promise.all([d.store.countIssuedCertificates(), d.store.listIssuedCertificates({ offset, limit })]);
    page(ctx, 'certificates', 'Certificates', certificatesPage(certs, crl, csrf(ctx), { offset, limit, total }));
  });
  r.post('/certificates/:serial/revoke', async (ctx) => {
    const serial = ctx.params['serial']!;
    const done = await revokeCertificate(act(ctx), serial, parseReason(ctx.state.form?.get('reason') ?? undefined, 'unspecified'));
    snapshots.invalidate();
    see(ctx, '/console/certificates', done ? 'revoked' : 'already-revoked', serial.toUpperCase());
  });
  r.get('/certificates/crl', async (ctx) => {
    const der = await d.ca.crl();
    ctx.type = 'application/pkix-crl';
    ctx.set('Content-Disposition', 'attachment; filename="domain-ca.crl"');
    ctx.set('Cache-Control', 'no-store');
    ctx.body = Buffer.from(der);
  });

  // --- policy ---------------------------------------------------------------------------------
  r.get('/policy', async (ctx) => {
    const [mode, adminAllowlist, changes] = await Promise.all([admission.currentMode(true), d.store.listAllowlist(), d.store.listPolicyChanges(20)]);
    page(ctx, 'policy', 'Policy', policyPage({
      mode, configAllowlist: d.policy.allowlist, adminAllowlist, changes,
      ...(d.policy.refusalStatus ? { refusalStatus: d.policy.refusalStatus } : {}),
    }, csrf(ctx)));
  });
  r.post('/policy/mode', async (ctx) => {
    const change = await setMode(act(ctx), admission, ctx.state.form!.get('mode') ?? undefined, 'console');
    snapshots.invalidate();
    see(ctx, '/console/policy', change.changed ? 'mode-set' : 'mode-unchanged', change.after.mode);
  });
  r.post('/policy/allowlist', async (ctx) => {
    const entry = ctx.state.form!.get('entry') ?? '';
    const added = await addAllowlist(act(ctx), entry);
    see(ctx, '/console/policy', added ? 'allow-added' : 'allow-exists', entry);
  });
  r.post('/policy/allowlist/remove', async (ctx) => {
    const entry = ctx.state.form!.get('entry') ?? '';
    await removeAllowlist(act(ctx), entry);
    see(ctx, '/console/policy', 'allow-removed', entry);
  });

  return r;
}

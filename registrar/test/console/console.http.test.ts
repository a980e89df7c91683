/**
 * The console's security over plain HTTPS (no browser needed, so these run even where Chromium
 * is absent): login and its refusals, cookie attributes, CSP on pages, errors and assets, CSRF
 * and fetch-metadata refusals, form content type, escaping of attacker-influenced store data,
 * no secrets in pages, the post-login redirect filter and the login throttle.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request, type HttpResult } from '../helpers/client.ts';
import { startConsoleWorld, type ConsoleWorld } from './harness.ts';

let w: ConsoleWorld;
let base = '';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";

beforeAll(async () => {
  w = await startConsoleWorld({ devices: 2 });
  base = `${w.consoleUrl}/console`;
});
afterAll(async () => { await w?.stop(); });

const setCookies = (r: HttpResult): string[] => ([] as string[]).concat(r.headers['set-cookie'] ?? []);
const cookieValue = (r: HttpResult, name: string): string | undefined =>
  setCookies(r).map((c) => c.split(';')[0]!).find((c) => c.startsWith(`${name}=`))?.slice(name.length + 1);

async function loginForm(): Promise<{ cookie: string; field: string }> {
  const r = await request(`${base}/login`);
  const cookie = cookieValue(r, '__Host-brski-console-login')!;
  const field = /name="_login" value="([^"]+)"/.exec(r.body.toString())![1]!;
  return { cookie, field };
}

async function login(token: string, next?: string): Promise<HttpResult> {
  const f = await loginForm();
  const body = new URLSearchParams({ _login: f.field, token, ...(next ? { next } : {}) }).toString();
  return request(`${base}/login`, { method: 'POST', headers: { ...FORM, cookie: `__Host-brski-console-login=${f.cookie}` }, body });
}

async function session(): Promise<{ cookie: string; csrf: string }> {
  const r = await login(w.fx.adminToken);
  const cookie = `__Host-brski-console=${cookieValue(r, '__Host-brski-console')!}`;
  const page = await request(`${base}/policy`, { headers: { cookie } });
  return { cookie, csrf: /name="_csrf" value="([^"]+)"/.exec(page.body.toString())![1]! };
}

describe('console login', () => {
  it('serves the login page with a strict CSP and no secret', async () => {
    const r = await request(`${base}/login`);
    expect(r.status).toBe(200);
    expect(r.headers['content-security-policy']).toContain(CSP);
    expect(r.headers['x-frame-options']).toBe('DENY');
    expect(r.body.toString()).not.toContain(w.fx.adminToken);
    const asset = await request(`${base}/static/htmx.min.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers['content-type']).toContain('javascript');
    expect(asset.headers['content-security-policy']).toContain(CSP);
  });

  it('refuses a login without the login form cookie, or with a wrong token', async () => {
    const f = await loginForm();
    const noCookie = await request(`${base}/login`, { method: 'POST', headers: FORM, body: `_login=${f.field}&token=${encodeURIComponent(w.fx.adminToken)}` });
    expect(noCookie.status).toBe(403);
    expect(cookieValue(noCookie, '__Host-brski-console')).toBeUndefined();
    const wrong = await login('x'.repeat(32));
    expect(wrong.status).toBe(401);
    expect(cookieValue(wrong, '__Host-brski-console')).toBeUndefined();
  });

  it('sets an HttpOnly, Secure, SameSite=Strict session cookie and redirects only inside the console', async () => {
    const ok = await login(w.fx.adminToken, '/console/approvals');
    expect(ok.status).toBe(303);
    expect(ok.headers['location']).toBe('/console/approvals');
    const c = setCookies(ok).find((x) => x.startsWith('__Host-brski-console='))!;
    expect(c.toLowerCase()).toContain('httponly');
    expect(c.toLowerCase()).toContain('secure');
    expect(c.toLowerCase()).toContain('samesite=strict');
    expect(c).toContain('path=/');
    expect(c).not.toContain(w.fx.adminToken);
    const evil = await login(w.fx.adminToken, 'https://evil.example/');
    expect(evil.headers['location']).toBe('/console/dashboard');
  });
});

describe('console with a session', () => {
  it('answers 401 with the CSP on errors, 200 with a session', async () => {
    const s = await session();
    const no = await request(`${base}/dashboard/live`, { headers: { 'hx-request': 'true' } });
    expect(no.status).toBe(401);
    expect(no.headers['content-security-policy']).toContain(CSP);
    expect(no.headers['hx-redirect']).toBe('/console/login');
    const yes = await request(`${base}/dashboard/live`, { headers: { cookie: s.cookie } });
    expect(yes.status).toBe(200);
    expect(yes.body.toString()).toContain('id="count-enrolled"');
  });

  it('refuses state changes without the CSRF token, cross-site, or not as a form', async () => {
    const s = await session();
    const post = (headers: Record<string, string>, body: string) =>
      request(`${base}/policy/allowlist`, { method: 'POST', headers: { cookie: s.cookie, ...FORM, ...headers }, body });
    expect((await post({}, 'entry=A-*')).status).toBe(403);
    expect((await post({ 'x-csrf-token': 'nope' }, 'entry=A-*')).status).toBe(403);
    expect((await post({ 'sec-fetch-site': 'cross-site' }, `entry=A-*&_csrf=${s.csrf}`)).status).toBe(403);
    expect((await post({ 'sec-fetch-site': 'same-site' }, `entry=A-*&_csrf=${s.csrf}`)).status).toBe(403);
    expect((await post({ origin: 'null' }, `entry=A-*&_csrf=${s.csrf}`)).status).toBe(403);
    expect((await post({ 'content-type': 'application/json' }, JSON.stringify({ entry: 'A-*', _csrf: s.csrf }))).status).toBe(415);
    expect(await w.reg.store.listAllowlist()).toEqual([]);
    // The same request with the token (header form, as htmx sends it) goes through.
    const ok = await post({ 'x-csrf-token': s.csrf }, 'entry=A-*');
    expect(ok.status).toBe(303);
    expect(await w.reg.store.listAllowlist()).toEqual(['A-*']);
    const bad = await post({ 'x-csrf-token': s.csrf }, 'entry=has%20space');
    expect(bad.status).toBe(400);
  });

  it('escapes attacker-influenced store data and renders no key material', async () => {
    const s = await session();
    const serial = 'X"><script>alert(1)</script>';
    await w.reg.store.updatePledge(serial, { state: 'failed', lastError: '<img src=x onerror=alert(1)>', manufacturer: '<b>M</b>' }, { type: 'voucher-refused', detail: { reason: '<svg onload=alert(1)>' } });
    // The list pages read a snapshot cached for a second: wait until it includes the new pledge.
    await expect.poll(async () => (await request(`${base}/devices`, { headers: { cookie: s.cookie } })).body.toString(), { timeout: 5000 })
      .toContain('&lt;img src=x onerror=alert(1)&gt;');
    for (const path of ['/devices', '/dashboard', `/devices/${encodeURIComponent(serial)}`]) {
      const r = await request(`${base}${path}`, { headers: { cookie: s.cookie } });
      expect(r.status, path).toBe(200);
      const body = r.body.toString();
      expect(body, path).not.toContain('<script>alert');
      expect(body, path).not.toContain('<img src=x');
      expect(body, path).not.toContain('<svg onload');
      expect(body, path).not.toContain('PRIVATE KEY');
      expect(body, path).not.toContain(w.fx.adminToken);
    }
    const detail = (await request(`${base}/devices/${encodeURIComponent(serial)}`, { headers: { cookie: s.cookie } })).body.toString();
    expect(detail).toContain('X&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(detail).toContain('&lt;svg onload=alert(1)&gt;');
  });

  it('revokes through the CA and serves the CRL as DER', async () => {
    const s = await session();
    const unknown = await request(`${base}/certificates/ABCDEF/revoke`, { method: 'POST', headers: { cookie: s.cookie, ...FORM, 'x-csrf-token': s.csrf }, body: 'reason=keyCompromise' });
    expect(unknown.status).toBe(404);
    const badReason = await request(`${base}/certificates/ABCDEF/revoke`, { method: 'POST', headers: { cookie: s.cookie, ...FORM, 'x-csrf-token': s.csrf }, body: 'reason=because' });
    expect(badReason.status).toBe(400);
    const crl = await request(`${base}/certificates/crl`, { headers: { cookie: s.cookie } });
    expect(crl.status).toBe(200);
    expect(crl.headers['content-type']).toBe('application/pkix-crl');
    expect(crl.body[0]).toBe(0x30);
  });

  it('changes the admission mode only with the CSRF token, from the same origin, as a form', async () => {
    const s = await session();
    const post = (headers: Record<string, string>, body: string) =>
      request(`${base}/policy/mode`, { method: 'POST', headers: { cookie: s.cookie, ...FORM, ...headers }, body });
    expect((await request(`${base}/policy/mode`, { method: 'POST', headers: FORM, body: `mode=approve&_csrf=${s.csrf}` })).status).toBe(401);
    expect((await post({}, 'mode=approve')).status).toBe(403);
    expect((await post({ 'x-csrf-token': `${s.csrf.slice(0, -2)}xx` }, 'mode=approve')).status).toBe(403);
    expect((await post({ 'sec-fetch-site': 'cross-site' }, `mode=approve&_csrf=${s.csrf}`)).status).toBe(403);
    expect((await post({ origin: 'https://evil.example' }, `mode=approve&_csrf=${s.csrf}`)).status).toBe(403);
    expect((await post({ 'content-type': 'application/json' }, JSON.stringify({ mode: 'approve', _csrf: s.csrf }))).status).toBe(415);
    expect((await post({ 'x-csrf-token': s.csrf }, 'mode=open')).status).toBe(400);
    expect((await post({ 'x-csrf-token': s.csrf }, 'mode=')).status).toBe(400);
    expect(await w.reg.store.getAdmissionMode()).toBeUndefined();
    expect(await w.reg.store.listPolicyChanges()).toEqual([]);

    const ok = await post({}, `mode=approve&_csrf=${s.csrf}`);
    expect(ok.status).toBe(303);
    expect(ok.headers['location']).toBe('/console/policy?flash=mode-set&item=approve');
    expect(await w.reg.store.getAdmissionMode()).toMatchObject({ mode: 'approve', setBy: 'console' });
    const page = (await request(`${base}/policy`, { headers: { cookie: s.cookie } })).body.toString();
    expect(page).toContain('<strong id="policy-mode">approve</strong>');
    expect(page).toContain('registrar.yaml says <code>accept</code>');
    expect(page).toMatch(/<table id="policy-changes">[\s\S]*<td>accept<\/td><td>approve<\/td><td>console<\/td><td>console<\/td>/);
    expect((await post({ 'x-csrf-token': s.csrf }, 'mode=approve')).headers['location']).toBe('/console/policy?flash=mode-unchanged&item=approve');
    const back = await post({ 'x-csrf-token': s.csrf }, 'mode=config');
    expect(back.headers['location']).toBe('/console/policy?flash=mode-set&item=accept');
    expect(await w.reg.store.getAdmissionMode()).toBeUndefined();
    expect((await w.reg.store.listPolicyChanges()).map((c) => `${c.from}->${c.to}`)).toEqual(['approve->accept', 'accept->approve']);
  });

  it('pages the certificate list from the store, newest first, and finds by exact serial', async () => {
    const s = await session();
    const before = await w.reg.store.countIssuedCertificates();
    for (let i = 0; i < 105; i++) {
      await w.reg.store.recordCertificate({
        serialNumber: `EE${i.toString(16).padStart(4, '0').toUpperCase()}`, der: Uint8Array.of(0x30, 0), pledgeSerial: `PAGE-${i}`,
        issuedAt: new Date(Date.UTC(2030, 0, 1, 0, i)).toISOString(), notAfter: '2031-01-01T00:00:00.000Z',
      });
    }
    const get = async (q: string) => request(`${base}/certificates${q}`, { headers: { cookie: s.cookie } });
    const rows = (body: string) => [...body.matchAll(/<tr data-cert="([0-9A-F]+)"/g)].map((m) => m[1]);
    const first = (await get('')).body.toString();
    expect(rows(first).length).toBe(100);
    expect(rows(first)[0]).toBe('EE0068');
    expect(first).toContain(`Issued 1–100 of ${before + 105}`);
    expect(first).toContain('href="/console/certificates?offset=100" rel="next"');
    const second = (await get('?offset=100')).body.toString();
    expect(rows(second).slice(0, 5)).toEqual(['EE0004', 'EE0003', 'EE0002', 'EE0001', 'EE0000']);
    expect(second).toContain('rel="prev"');
    expect(rows((await get('?q=ee:00:07')).body.toString())).toEqual(['EE0007']);
    expect(rows((await get('?q=PAGE-9')).body.toString())).toEqual(['EE0009']);
    expect(rows((await get('?q=nothing-here')).body.toString())).toEqual([]);
    expect((await get('?offset=-5')).status).toBe(400);
  });

  it('throttles repeated failed logins', async () => {
    let last: HttpResult | undefined;
    for (let i = 0; i < 11; i++) last = await login(`wrong-token-${i}-xxxxxxxxxxxx`);
    expect(last!.status).toBe(429);
    // Even the right token waits out the window.
    expect((await login(w.fx.adminToken)).status).toBe(429);
  });
});

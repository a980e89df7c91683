/**
 * The operator console in a real browser (Debian's Chromium driven by playwright-core) against a
 * running registrar in approve mode with the test MASA: login and its refusals, CSRF refusals,
 * the allowlist edited and the admission mode switched on the policy page, a fleet (pledge-sim) watched on the live dashboard,
 * queued pledges approved / denied on the approvals page and seen to enroll, a certificate revoked
 * and found in the CRL downloaded from the console (read with `openssl crl`), the device timeline
 * with a MASA audit log that names another domain. Every page is screenshotted into
 * test-artifacts/console/. No CSP violation may be reported by the browser at any point.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { runFleet, type FleetReport } from '@brski/pledge-sim/fleet/fleet';
import { manifestSource, manufacturerTrust } from '@brski/pledge-sim/fleet/sources';
import { request } from '../helpers/client.ts';
import { startConsoleWorld, type ConsoleWorld } from './harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/console/', import.meta.url));
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`console browser tests skipped: ${CHROMIUM} not found (apt-get install -y chromium; .ci/run installs it)`);

let w: ConsoleWorld;
let browser: Browser;
let ctx: BrowserContext;
let page: Page;
const cspViolations: string[] = [];
let base = '';

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}${name}.png`, fullPage: true });
}

/** A fleet over pledges [from, from+count) of the fixture PKI. */
function fleet(from: number, count: number, concurrency: number): Promise<FleetReport> {
  const src = manifestSource(w.fx.manifest);
  return runFleet({
    count, concurrency, format: 'mixed', registrars: [w.reg.url], trust: manufacturerTrust(w.fx.manifest),
    secureElement: (i) => src.secureElement(from + i), retry: { capSeconds: 1, defaultSeconds: 1, maxTotalSeconds: 60 },
  });
}

const csrfOf = async (): Promise<string> => (await page.locator('input[name=_csrf]').first().getAttribute('value'))!;

describe.skipIf(!haveChromium)('operator console in Chromium', () => {
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    w = await startConsoleWorld({ devices: 15, overrides: (c) => { c.policy.mode = 'approve'; c.policy.approvalRetryAfter = 1; } });
    base = `${w.consoleUrl}/console`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run',
        '--disable-component-update', '--disable-sync'],
    });
    ctx = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    page = await ctx.newPage();
    page.on('console', (m) => { if (/Content[- ]Security[- ]Policy|Refused to/i.test(m.text())) cspViolations.push(m.text()); });
    page.on('dialog', (d) => { void d.accept(); });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await w?.stop();
  }, 60_000);

  it('refuses every page and call without a session', async () => {
    const nav = await request(`${base}/dashboard`, { headers: { accept: 'text/html' } });
    expect(nav.status).toBe(303);
    expect(nav.headers['location']).toBe('/console/login?next=%2Fconsole%2Fdashboard');
    for (const path of ['/dashboard/live', '/devices/table', '/approvals/live', '/certificates/crl', '/devices/PSIM-000001']) {
      const r = await request(`${base}${path}`, { headers: { 'hx-request': 'true' } });
      expect(r.status, path).toBe(401);
    }
    const post = await request(`${base}/approvals`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'decision=approved&serial=PSIM-000010' });
    expect(post.status).toBe(401);
    // A forged session cookie is no session.
    const forged = await request(`${base}/certificates/crl`, { headers: { cookie: '__Host-brski-console=eyJ2IjoxfQ.AAAA' } });
    expect(forged.status).toBe(401);
    expect(await w.reg.store.getApproval('PSIM-000010')).toBeUndefined();

    await page.goto(`${base}/devices`);
    expect(new URL(page.url()).pathname).toBe('/console/login');
    await shot('login');
    await page.fill('input[name=token]', 'not-the-admin-token-at-all');
    await page.click('button[type=submit]');
    await expect.poll(() => page.locator('.flash.error').textContent()).toContain('Wrong admin token');
  });

  it('logs in with the admin token: hardened cookie, strict CSP, no secret in the page', async () => {
    await page.fill('input[name=token]', w.fx.adminToken);
    const [resp] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/console/devices')), page.click('button[type=submit]')]);
    expect(new URL(page.url()).pathname).toBe('/console/devices');
    expect(resp.headers()['content-security-policy']).toContain("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'");
    const cookies = await ctx.cookies();
    const session = cookies.find((c) => c.name === '__Host-brski-console');
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict', path: '/' });
    expect(session!.value).not.toContain(w.fx.adminToken);
    expect(await page.content()).not.toContain(w.fx.adminToken);
    // htmx loaded from 'self' and running under the CSP (no inline style/script needed).
    expect(await page.evaluate('typeof window.htmx')).toBe('object');
  });

  it('refuses state changes without the CSRF token or from another origin', async () => {
    await page.goto(`${base}/policy`);
    const csrf = await csrfOf();
    const noToken = await page.request.post(`${base}/policy/allowlist`, { form: { entry: 'EVIL-*' }, maxRedirects: 0 });
    expect(noToken.status()).toBe(403);
    const wrong = await page.request.post(`${base}/policy/allowlist`, { form: { entry: 'EVIL-*', _csrf: `${csrf.slice(0, -2)}xx` }, maxRedirects: 0 });
    expect(wrong.status()).toBe(403);
    const crossSite = await page.request.post(`${base}/policy/allowlist`, { form: { entry: 'EVIL-*', _csrf: csrf }, headers: { origin: 'https://evil.example' }, maxRedirects: 0 });
    expect(crossSite.status()).toBe(403);
    // The session cookie alone (what a cross-site form would carry at best) is not enough either.
    const cookie = (await ctx.cookies()).find((c) => c.name === '__Host-brski-console')!;
    const raw = await request(`${base}/approvals`, { method: 'POST', headers: { cookie: `${cookie.name}=${cookie.value}`, 'content-type': 'application/x-www-form-urlencoded' }, body: 'decision=approved&serial=PSIM-000010' });
    expect(raw.status).toBe(403);
    expect(await w.reg.store.listAllowlist()).toEqual([]);
    expect(await w.reg.store.getApproval('PSIM-000010')).toBeUndefined();
  });

  it('edits the allowlist on the policy page', async () => {
    await page.goto(`${base}/policy`);
    expect(await page.locator('#policy-mode').textContent()).toBe('approve');
    // PSIM-000001 … PSIM-000009 pass without approval; PSIM-000010 and later will queue.
    await page.fill('input[name=entry]', 'PSIM-00000?');
    await page.click('form:has(input[name=entry][type=text]) button[type=submit]');
    await expect.poll(() => page.locator('.flash.ok').textContent()).toContain('Added PSIM-00000? to the allowlist');
    expect(await page.locator('#allowlist tr[data-entry="PSIM-00000?"]').count()).toBe(1);
    expect(await w.reg.store.listAllowlist()).toEqual(['PSIM-00000?']);
    await shot('policy');
  });

  it('shows a running fleet on the live dashboard as it enrolls', async () => {
    await page.goto(`${base}/dashboard`);
    const enrolled = page.locator('#count-enrolled');
    expect(await enrolled.textContent()).toBe('0');
    // What the browser received through htmx polling, in order (not what the test reads itself).
    const seen: number[] = [];
    const onLive = (r: import('playwright-core').Response) => {
      if (!r.url().endsWith('/console/dashboard/live')) return;
      void r.text().then((t) => { const m = /id="count-enrolled">(\d+)</.exec(t); if (m) seen.push(Number(m[1])); }, () => undefined);
    };
    page.on('response', onLive);
    const navigations: string[] = [];
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(f.url()); });
    try {
      // Two waves, so the rise is seen deterministically: 0 → 4 → 9 on the same page.
      for (const [from, count, total] of [[0, 4, '4'], [4, 5, '9']] as const) {
        const report = await fleet(from, count, 2);
        expect(report.failed, JSON.stringify(report.failuresByReason)).toBe(0);
        expect(report.onboarded).toBe(count);
        await expect.poll(() => enrolled.textContent(), { timeout: 15_000 }).toBe(total);
      }
      await expect.poll(() => seen.at(-1)).toBe(9);
    } finally {
      page.off('response', onLive);
    }
    // The page was not reloaded: htmx polling brought the numbers in, never decreasing.
    expect(navigations).toEqual([]);
    expect(seen).toContain(4);
    expect(seen.indexOf(4)).toBeLessThan(seen.indexOf(9));
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    expect(await page.locator('svg.chart').getAttribute('data-total')).toBe('9');
    expect(await page.locator('td[data-state="enrolled"]').textContent()).toBe('9');
    await expect.poll(() => page.locator('.badge.masa-reachable').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await shot('dashboard');
  });

  it('approves queued pledges (one or many) and denies one; approved ones enroll', async () => {
    // PSIM-000010 … 000012 are not allow-listed: they wait for an operator (202 + Retry-After).
    const running = fleet(9, 3, 3);
    await page.goto(`${base}/approvals`);
    for (const s of ['PSIM-000010', 'PSIM-000011', 'PSIM-000012']) {
      await expect.poll(() => page.locator(`#pending tr[data-serial="${s}"]`).count(), { timeout: 20_000 }).toBe(1);
    }
    await shot('approvals');
    await page.check('#pending tr[data-serial="PSIM-000012"] input[name=serial]');
    await page.click('button[value=denied]');
    await expect.poll(() => page.locator('.flash.ok').textContent()).toContain('Denied: PSIM-000012');
    await page.check('#pending tr[data-serial="PSIM-000010"] input[name=serial]');
    await page.check('#pending tr[data-serial="PSIM-000011"] input[name=serial]');
    await page.click('button[value=approved]');
    await expect.poll(() => page.locator('.flash.ok').textContent()).toContain('Approved: PSIM-000010, PSIM-000011');
    expect(await page.locator('#decided tr[data-serial="PSIM-000010"]').textContent()).toContain('approved');

    const report = await running;
    const bySerial = Object.fromEntries(report.outcomes.map((o) => [o.serial, o]));
    expect(bySerial['PSIM-000010']?.ok).toBe(true);
    expect(bySerial['PSIM-000011']?.ok).toBe(true);
    expect(bySerial['PSIM-000012']?.ok).toBe(false);

    await page.goto(`${base}/devices?serial=000010`);
    await expect.poll(() => page.locator('#device-table tr[data-serial="PSIM-000010"] .badge').textContent()).toBe('enrolled');
    await page.goto(`${base}/devices/PSIM-000010`);
    const timeline = await page.locator('#timeline').textContent();
    expect(timeline).toContain('Queued for operator approval');
    expect(timeline).toContain('Approved by an operator');
    expect(timeline).toContain('LDevID issued (enrollment)');
    await page.goto(`${base}/devices?state=failed`);
    await expect.poll(() => page.locator('#device-table tr[data-serial="PSIM-000012"]').count()).toBe(1);
    expect(await page.locator('#device-table tbody tr').count()).toBe(1);
    await shot('devices');
  });

  it('switches the admission mode on the policy page: accept onboards without approval, approve queues', async () => {
    const applyMode = async (mode: string, expected: string) => {
      await page.goto(`${base}/policy`);
      await page.check(`#mode-form input[name=mode][value=${mode}]`);
      await page.click('#mode-form button[type=submit]');
      await expect.poll(() => page.locator('.flash.ok').textContent()).toContain(`Admission mode is now ${expected}`);
      expect(await page.locator('#policy-mode').textContent()).toBe(expected);
    };
    await page.goto(`${base}/policy`);
    expect(await page.locator('#policy-mode-source').textContent()).toContain('From registrar.yaml');

    // accept: PSIM-000014 (not allow-listed) onboards with no approval asked.
    await applyMode('accept', 'accept');
    expect(await page.locator('#policy-mode-source').textContent()).toContain('Set by console');
    const accepted = await fleet(13, 1, 1);
    expect(accepted.onboarded, JSON.stringify(accepted.failuresByReason)).toBe(1);
    expect(await w.reg.store.getApproval('PSIM-000014')).toBeUndefined();
    expect((await w.reg.store.getPledge('PSIM-000014'))?.state).toBe('enrolled');

    // approve: the next unknown pledge waits in the queue.
    await applyMode('approve', 'approve');
    const running = fleet(14, 1, 1);
    await page.goto(`${base}/approvals`);
    await expect.poll(() => page.locator('#pending tr[data-serial="PSIM-000015"]').count(), { timeout: 20_000 }).toBe(1);
    expect((await w.reg.store.getPledge('PSIM-000015'))?.state).toBe('waiting-approval');
    await shot('approvals-after-mode-change');

    // accept again: the waiting pledge passes on its next retry, without an operator decision.
    await applyMode('accept', 'accept');
    const released = await running;
    expect(released.onboarded, JSON.stringify(released.failuresByReason)).toBe(1);
    expect((await w.reg.store.getApproval('PSIM-000015'))?.decision).toBe('pending');
    expect((await w.reg.store.getPledge('PSIM-000015'))?.state).toBe('enrolled');

    // Back to registrar.yaml; the trail shows every change.
    await applyMode('config', 'approve');
    expect(await page.locator('#policy-mode-source').textContent()).toContain('From registrar.yaml');
    expect(await page.locator('#policy-changes tbody tr').count()).toBe(4);
    expect((await w.reg.store.listPolicyChanges()).map((c) => c.to)).toEqual(['approve', 'accept', 'approve', 'accept']);
    await shot('policy-mode');
  });

  it('revokes a certificate and finds it in the CRL downloaded from the console', async () => {
    const victim = (await w.reg.store.getPledge('PSIM-000003'))!.currentCertificate!;
    await page.goto(`${base}/certificates`);
    const row = page.locator(`#certificates tr[data-cert="${victim}"]`);
    await row.locator('select[name=reason]').selectOption('keyCompromise');
    await row.locator('button').click();
    await expect.poll(() => page.locator('.flash.ok').textContent()).toContain(`Certificate ${victim} revoked`);
    expect(await page.locator(`#certificates tr[data-cert="${victim}"]`).textContent()).toContain('keyCompromise');
    expect((await w.reg.store.getCertificate(victim))?.revocationReason).toBe('keyCompromise');
    await shot('certificates');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#crl-download')]);
    const file = `${ARTIFACTS}domain-ca.crl`;
    await download.saveAs(file);
    const text = execFileSync('openssl', ['crl', '-inform', 'DER', '-in', file, '-noout', '-text']).toString();
    expect(text.replace(/\s+/g, ' ')).toMatch(new RegExp(`Serial Number: 0*${victim.replace(/^0+/, '')}`, 'i'));
    expect(text).toContain('Key Compromise');
    // The CRL verifies under the domain CA.
    execFileSync('openssl', ['crl', '-inform', 'DER', '-in', file, '-noout', '-CAfile', `${w.fx.dir}/domain-ca.pem`]);
  });

  it('shows the device timeline and warns when the MASA audit log names another domain', async () => {
    w.masa.extraAuditEvents.push({ date: new Date().toISOString(), domainID: Buffer.alloc(20, 7).toString('base64'), nonce: null, assertion: 'logged' });
    await page.goto(`${base}/devices/PSIM-000003`);
    const timeline = await page.locator('#timeline').textContent();
    for (const t of ['Voucher request relayed to the MASA', 'Voucher obtained and relayed', 'Voucher status telemetry', 'LDevID issued (enrollment)',
      'Enroll status telemetry', 'Certificate revoked']) expect(timeline).toContain(t);
    await page.click('#auditlog button');
    await expect.poll(() => page.locator('#foreign-domain-warning').count(), { timeout: 10_000 }).toBe(1);
    expect(await page.locator('#auditlog tr.foreign').count()).toBe(1);
    await shot('device');
  });

  it('logs out, and the old session no longer works', async () => {
    const cookie = (await ctx.cookies()).find((c) => c.name === '__Host-brski-console')!;
    await page.goto(`${base}/dashboard`);
    await page.click('header .logout button');
    expect(new URL(page.url()).pathname).toBe('/console/login');
    const after = await request(`${base}/dashboard/live`, { headers: { cookie: `${cookie.name}=${cookie.value}`, 'hx-request': 'true' } });
    expect(after.status).toBe(401);
  });

  it('reported no Content-Security-Policy violation', () => {
    expect(cspViolations).toEqual([]);
  });
});

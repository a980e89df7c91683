/**
 * Console building blocks without a browser or a server: HTML escaping, session cookies and CSRF
 * tokens (tampering, expiry, logout, token rotation), the login throttle, the post-login redirect
 * filter, and the dashboard read models.
 */
import { describe, expect, it } from 'vitest';
import { barChart } from '../../src/console/chart.ts';
import { escapeHtml, html, raw } from '../../src/console/html.ts';
import { safeNext } from '../../src/console/routes.ts';
import { LoginThrottle, SESSION_SECONDS, SessionKeys } from '../../src/console/session.ts';
import { countByState, failureReason, filterDevices, onboardingsPerMinute, recentFailures } from '../../src/console/stats.ts';
import type { PledgeRecord } from '../../src/store/types.ts';

const TOKEN = 'admin-token-0123456789abcdef';
const T0 = Date.parse('2026-01-01T12:00:30Z');

describe('html', () => {
  it('escapes every interpolation unless it is SafeHtml', () => {
    const evil = '"><script>alert(1)</script><a href=\'x\'>`';
    const out = html`<td title="${evil}">${evil}</td>`.value;
    expect(out).not.toContain('<script>');
    expect(out).toBe(`<td title="${escapeHtml(evil)}">${escapeHtml(evil)}</td>`);
    expect(out).toContain('&quot;&gt;&lt;script&gt;');
    expect(html`<p>${html`<b>${'<i>'}</b>`}</p>`.value).toBe('<p><b>&lt;i&gt;</b></p>');
    expect(html`${[1, '<', raw('<br>')]}${null}${undefined}${false}`.value).toBe('1&lt;<br>');
  });
});

describe('sessions and CSRF', () => {
  const keys = new SessionKeys(TOKEN);
  it('issues a cookie that verifies, and nothing else does', () => {
    const { cookie, session } = keys.issue(T0);
    expect(cookie).not.toContain(TOKEN);
    expect(keys.verify(cookie, T0 + 1000)).toEqual(session);
    const [payload, mac] = cookie.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify({ v: 1, sid: session.id, iat: session.issuedAt, exp: session.expiresAt + 86400 })).toString('base64url');
    expect(keys.verify(`${forged}.${mac}`, T0)).toBeUndefined();
    // Change the FIRST MAC character: it carries six full bits (the last one partly padding, and a
    // fixed replacement can equal the original), so this always alters the MAC.
    expect(keys.verify(`${payload}.${mac.startsWith('A') ? 'B' : 'A'}${mac.slice(1)}`, T0)).toBeUndefined();
    expect(keys.verify(payload, T0)).toBeUndefined();
    expect(keys.verify('', T0)).toBeUndefined();
    expect(keys.verify(undefined, T0)).toBeUndefined();
  });
  it('expires, and a rotated admin token invalidates every session', () => {
    const { cookie } = keys.issue(T0);
    expect(keys.verify(cookie, T0 + SESSION_SECONDS * 1000 - 1000)).toBeDefined();
    expect(keys.verify(cookie, T0 + SESSION_SECONDS * 1000)).toBeUndefined();
    expect(new SessionKeys(`${TOKEN}-rotated`).verify(cookie, T0)).toBeUndefined();
  });
  it('logs out a session', () => {
    const { cookie, session } = keys.issue(T0);
    keys.revoke(session, T0);
    expect(keys.verify(cookie, T0)).toBeUndefined();
  });
  it('binds the CSRF token to the session', () => {
    const a = keys.issue(T0).session;
    const b = keys.issue(T0).session;
    const t = keys.csrfToken(a);
    expect(keys.checkCsrf(a, t)).toBe(true);
    expect(keys.checkCsrf(b, t)).toBe(false);
    expect(keys.checkCsrf(a, undefined)).toBe(false);
    expect(keys.checkCsrf(a, '')).toBe(false);
    expect(keys.checkCsrf(a, `${t}x`)).toBe(false);
    expect(new SessionKeys(`${TOKEN}-rotated`).checkCsrf(a, t)).toBe(false);
  });
  it('checks the admin token', () => {
    expect(keys.checkToken(TOKEN)).toBe(true);
    expect(keys.checkToken(`${TOKEN} `)).toBe(false);
    expect(keys.checkToken('')).toBe(false);
  });
  it('throttles repeated login failures for a window', () => {
    const t = new LoginThrottle(3, 60_000);
    for (let i = 0; i < 3; i++) { expect(t.blocked(T0)).toBe(false); t.fail(T0); }
    expect(t.blocked(T0 + 1000)).toBe(true);
    expect(t.blocked(T0 + 60_001)).toBe(false);
  });
  it('redirects after login only to console paths', () => {
    expect(safeNext('/console/devices')).toBe('/console/devices');
    for (const bad of ['https://evil.example/', '//evil.example/console', '/console//evil', '/consolex', '/console/../admin', '/console/%2e%2e/admin', '/console/./x', '/\\evil', null, undefined, '']) {
      expect(safeNext(bad as string | null | undefined), String(bad)).toBe('/console/dashboard');
    }
  });
});

const pledge = (serial: string, p: Partial<PledgeRecord>): PledgeRecord => ({ serial, state: 'requested', createdAt: '2026-01-01T11:00:00.000Z', updatedAt: '2026-01-01T12:00:00.000Z', ...p });

describe('dashboard read models', () => {
  const now = new Date(T0);
  const pledges = [
    pledge('A-1', { state: 'enrolled', enrolledAt: '2026-01-01T12:00:10.000Z', manufacturer: 'Acme' }),
    pledge('A-2', { state: 'enrolled', enrolledAt: '2026-01-01T11:59:59.000Z', manufacturer: 'Acme' }),
    pledge('A-3', { state: 'enrolled', enrolledAt: '2026-01-01T11:00:00.000Z', manufacturer: 'Other' }),
    pledge('B-1', { state: 'failed', lastError: 'pledge B-1 not admitted: not on the allowlist', updatedAt: '2026-01-01T11:59:00.000Z' }),
    pledge('B-2', { state: 'failed', lastError: 'pledge B-2 not admitted: not on the allowlist', updatedAt: '2026-01-01T11:58:00.000Z' }),
    pledge('B-3', { state: 'failed', enrollStatus: { at: 'x', version: 1, status: false, reason: 'key store full', authenticated: true }, updatedAt: '2026-01-01T11:57:00.000Z' }),
    pledge('B-4', { state: 'failed', lastError: 'old', updatedAt: '2026-01-01T09:00:00.000Z' }),
  ];
  it('buckets enrollments per minute, newest bucket last', () => {
    const b = onboardingsPerMinute(pledges, now, 30);
    expect(b).toHaveLength(30);
    expect(b.at(-1)).toEqual({ start: new Date('2026-01-01T12:00:00Z'), count: 1 });
    expect(b.at(-2)!.count).toBe(1);
    expect(b.reduce((s, x) => s + x.count, 0)).toBe(2); // A-3 is older than the window
  });
  it('counts states and groups recent failures by reason without the serial', () => {
    expect(countByState(pledges)).toMatchObject({ enrolled: 3, failed: 4, requested: 0 });
    expect(failureReason(pledges[3]!)).toBe('pledge <serial> not admitted: not on the allowlist');
    const f = recentFailures(pledges, now);
    expect(f.map((x) => [x.reason, x.count])).toEqual([['pledge <serial> not admitted: not on the allowlist', 2], ['enroll status: key store full', 1]]);
    expect(f[0]!.example).toBe('B-1');
  });
  it('filters devices by state, serial substring and manufacturer', () => {
    expect(filterDevices(pledges, { state: 'enrolled', manufacturer: 'Acme' }).map((p) => p.serial)).toEqual(['A-1', 'A-2']);
    expect(filterDevices(pledges, { serial: 'b-' }).map((p) => p.serial)).toEqual(['B-1', 'B-2', 'B-3', 'B-4']);
  });
  it('draws one bar per bucket with the total in the SVG', () => {
    const svg = barChart(onboardingsPerMinute(pledges, now, 30), { label: 'x' }).value;
    expect(svg.match(/<rect /g)).toHaveLength(30);
    expect(svg).toContain('data-total="2"');
    expect(svg).not.toMatch(/style=/);
  });
});

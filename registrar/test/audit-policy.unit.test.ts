/**
 * The audit-log judgement (evaluateAuditLog) and the auditPolicy config keys, without a network.
 */
import { describe, expect, it } from 'vitest';
import { parseAuditLog, type AuditLog } from '@brski/shared/voucher/telemetry';
import { evaluateAuditLog } from '../src/authority/audit-policy.ts';
import { registrarConfigSchema } from '../src/config.ts';

const OURS = Buffer.alloc(20, 1).toString('base64');
const SISTER = Buffer.alloc(20, 2).toString('base64');
const STRANGER = Buffer.from([0xfb, 0xff, ...Buffer.alloc(18, 3)]).toString('base64'); // has + and / in base64
const ev = (domainID: string, nonce: string | null = 'abc', extra: Record<string, unknown> = {}) => ({ date: '2025-01-01T00:00:00Z', domainID, nonce, assertion: 'proximity', ...extra });
const opts = { ours: new Set([OURS]), allowed: new Set<string>(), requireNonce: true };
const log = (events: AuditLog['events'], truncation?: AuditLog['truncation']): AuditLog => ({ version: 1, events, ...(truncation ? { truncation } : {}) });

describe('evaluateAuditLog', () => {
  it('passes a log naming only our domain with nonces', () => {
    expect(evaluateAuditLog(log([ev(OURS), ev(OURS, 'def')]), opts)).toEqual([]);
  });

  it('flags another domain once per domainID, counting its abridged events', () => {
    const v = evaluateAuditLog(log([ev(STRANGER), ev(OURS), ev(STRANGER, 'x', { truncated: 3 })]), opts);
    expect(v).toEqual([{ kind: 'foreign-domain', domainID: STRANGER, count: 5 }]);
  });

  it('accepts allowed domainIDs, in either base64 alphabet', () => {
    const urlSafe = STRANGER.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    expect(evaluateAuditLog(log([ev(urlSafe), ev(SISTER)]), { ...opts, allowed: new Set([STRANGER, SISTER]) })).toEqual([]);
    expect(evaluateAuditLog(log([ev(urlSafe)]), opts)).toEqual([{ kind: 'foreign-domain', domainID: STRANGER, count: 1 }]);
  });

  it('flags nonceless events only when nonces are required (ours included)', () => {
    const l = log([ev(OURS, null)]);
    expect(evaluateAuditLog(l, opts)).toEqual([{ kind: 'nonceless', domainID: OURS, count: 1 }]);
    expect(evaluateAuditLog(l, { ...opts, requireNonce: false })).toEqual([]);
  });

  it('flags arbitrary truncation (hidden events could name anyone), not duplicate abridging', () => {
    expect(evaluateAuditLog(log([ev(OURS)], { noncedDuplicates: 4, noncelessDuplicates: 0, arbitrary: 0 }), opts)).toEqual([]);
    expect(evaluateAuditLog(log([ev(OURS)], { noncedDuplicates: 0, noncelessDuplicates: 0, arbitrary: 2 }), opts)).toEqual([{ kind: 'incomplete-log', count: 2 }]);
  });

  it('judges a log with string numbers (RFC example form) like the integer form', () => {
    const raw = JSON.stringify({ version: '1', events: [{ ...ev(STRANGER, null), truncated: '1' }], truncation: { arbitrary: '1' } });
    expect(evaluateAuditLog(parseAuditLog(new TextEncoder().encode(raw)), opts).map((v) => v.kind).sort()).toEqual(['foreign-domain', 'incomplete-log', 'nonceless']);
  });
});

describe('auditPolicy config', () => {
  const base = {
    tls: { certFile: 'a', keyFile: 'b' }, ca: { certFile: 'c', keyFile: 'd' }, manufacturers: [{ name: 'm', idevidAnchorFiles: ['e'] }],
    admin: { token: 'x'.repeat(16) },
  };
  it('defaults to warn, nonces required, no extra domains', () => {
    expect(registrarConfigSchema.parse(base).auditPolicy).toEqual({ mode: 'warn', allowDomainIds: [], requireNonce: true, attempts: 5, retryDelayMs: 5000, retryAfter: 10 });
  });
  it('refuses unknown modes, keys and non-base64 domainIDs', () => {
    expect(registrarConfigSchema.safeParse({ ...base, auditPolicy: { mode: 'strict' } }).success).toBe(false);
    expect(registrarConfigSchema.safeParse({ ...base, auditPolicy: { mode: 'enforce', extra: 1 } }).success).toBe(false);
    expect(registrarConfigSchema.safeParse({ ...base, auditPolicy: { allowDomainIds: ['not base64!'] } }).success).toBe(false);
    expect(registrarConfigSchema.safeParse({ ...base, auditPolicy: { mode: 'enforce', allowDomainIds: [SISTER] } }).success).toBe(true);
  });
});

/**
 * Audit-log policy (digest §2.1 h, §7.3, §12 registrar 7): once a pledge reports that it accepted
 * its voucher, fetch the MASA audit log with the same RVR (AuditLogService.fetchLog) in the
 * background, judge it, record the verdict on the pledge, alert on a violation, and — in
 * `enforce` mode — refuse simpleenroll for that pledge (406 audit-policy-failed, digest §3.3) until
 * an operator clears it. While no verdict exists for the current voucher, enforce answers EST with
 * 202 + Retry-After and (re)starts a bounded fetch round; the voucher window bounds the whole wait.
 *
 * The verdict lives in the pledge record's `audit` field (both stores keep any patch field as it is,
 * one JSON value per field on Redis), so every registrar process on the store sees it.
 */
import type { Logger } from 'pino';
import { BrskiError } from '@brski/shared/errors';
import type { AuditLog } from '@brski/shared/voucher/telemetry';
import { isTransient } from '../masa-client/client.ts';
import { normalizeB64, type AuditLogService } from '../admin/audit.ts';
import type { AuditViolation, PledgeAuditState, PledgePatch, PledgeRecord, RegistrarStore } from '../store/types.ts';

export type AuditMode = 'off' | 'warn' | 'enforce';

export interface AuditPolicyConfig {
  mode: AuditMode;
  /** Extra domainIDs (base64) whose events are acceptable. */
  allowDomainIds: readonly string[];
  requireNonce: boolean;
  /** Fetch attempts per round and the pause between them. */
  attempts: number;
  retryDelayMs: number;
  /** Retry-After (s) on EST while no verdict exists. */
  retryAfter: number;
}

export type { AuditStatus, AuditViolation, PledgeAuditState } from '../store/types.ts';

export function auditStateOf(rec: PledgeRecord | undefined): PledgeAuditState | undefined {
  return rec?.audit;
}

const auditPatch = (state: PledgeAuditState): PledgePatch => ({ audit: state });

/**
 * Judges a log: events naming a domain that is neither ours nor allowed, nonceless events when
 * nonces are required, and arbitrary truncation (events we cannot see may name anyone).
 */
export function evaluateAuditLog(log: AuditLog, o: { ours: ReadonlySet<string>; allowed: ReadonlySet<string>; requireNonce: boolean }): AuditViolation[] {
  const foreign = new Map<string, number>();
  const nonceless = new Map<string, number>();
  for (const e of log.events) {
    const id = normalizeB64(e.domainID);
    if (!o.ours.has(id) && !o.allowed.has(id)) foreign.set(id, (foreign.get(id) ?? 0) + 1 + (e.truncated ?? 0));
    if (o.requireNonce && e.nonce === null) nonceless.set(id, (nonceless.get(id) ?? 0) + 1);
  }
  const out: AuditViolation[] = [
    ...[...foreign].map(([domainID, count]) => ({ kind: 'foreign-domain' as const, domainID, count })),
    ...[...nonceless].map(([domainID, count]) => ({ kind: 'nonceless' as const, domainID, count })),
  ];
  const arbitrary = log.truncation?.arbitrary ?? 0;
  if (arbitrary > 0) out.push({ kind: 'incomplete-log', count: arbitrary });
  return out;
}

export interface AuditPolicyDeps {
  config: AuditPolicyConfig;
  store: RegistrarStore;
  audit: AuditLogService;
  logger: Logger;
  now: () => Date;
}

const MAX_RECORDED_VIOLATIONS = 20;

/**
 * One per registrar: createRegistrar builds it and passes the same object to the HTTPS BRSKI/EST
 * routes, the CoAPS services and the admin audit endpoints (no lookup by store).
 */
export class AuditPolicyService {
  readonly #d: AuditPolicyDeps;
  readonly #allowed: ReadonlySet<string>;
  readonly #inflight = new Map<string, Promise<void>>();
  readonly #sleeping = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  #stopped = false;

  constructor(d: AuditPolicyDeps) {
    this.#d = d;
    this.#allowed = new Set(d.config.allowDomainIds.map(normalizeB64));
  }

  get mode(): AuditMode { return this.#d.config.mode; }

  /** voucher_status success: fetch and judge in the background (never delays the pledge's answer). */
  afterVoucherStatus(serial: string): void {
    if (this.mode === 'off' || this.#stopped) return;
    void this.#start(serial);
  }

  /**
   * simpleenroll gate (enforce only): 406 after a violation until cleared; 202 + Retry-After while
   * the current voucher has no verdict (a fetch round is started if none runs here).
   */
  assertMayEnroll(rec: PledgeRecord): void {
    if (this.mode !== 'enforce') return;
    const a = auditStateOf(rec);
    this.assertNotBlocked(rec);
    if (a && (a.status === 'passed' || a.status === 'cleared') && a.voucherIssuedAt === rec.voucherIssuedAt) return;
    if (!this.#stopped) void this.#start(rec.serial);
    const why = a?.status === 'unavailable' ? `the MASA audit log could not be fetched yet (${a.error ?? 'unknown error'})` : 'the MASA audit log is being checked';
    throw new BrskiError('pending', `enrollment of ${rec.serial} waits for the audit-log policy: ${why}`, { retryAfter: this.#d.config.retryAfter });
  }

  /** Any EST issuance (simplereenroll too): refused while a violation stands (enforce only). */
  assertNotBlocked(rec: PledgeRecord | undefined): void {
    if (this.mode !== 'enforce' || !rec) return;
    const a = auditStateOf(rec);
    if (a?.status !== 'failed') return;
    const what = (a.violations ?? []).map((v) => `${v.kind}${v.domainID ? ` ${v.domainID}` : ''} (${v.count})`).join(', ');
    throw new BrskiError('audit-policy-failed', `MASA audit log of ${rec.serial} violates the audit policy (${what}); an operator must clear it`);
  }

  /** Operator override of a failed (or unavailable) verdict for the pledge's current voucher. */
  async clear(serial: string, by: string): Promise<PledgeAuditState> {
    const rec = await this.#d.store.getPledge(serial);
    if (!rec) throw new BrskiError('not-found', `no pledge ${serial}`);
    const a = auditStateOf(rec);
    if (!a || (a.status !== 'failed' && a.status !== 'unavailable')) {
      throw new BrskiError('conflict', `pledge ${serial} has no failed or unavailable audit verdict to clear (${a?.status ?? 'none'})`);
    }
    const state: PledgeAuditState = {
      status: 'cleared', voucherIssuedAt: rec.voucherIssuedAt ?? a.voucherIssuedAt, at: this.#d.now().toISOString(), clearedBy: by, clearedStatus: a.status,
      ...(a.violations ? { violations: a.violations } : {}), ...(a.events === undefined ? {} : { events: a.events }),
    };
    await this.#d.store.updatePledge(serial, auditPatch(state), { type: 'audit-policy-cleared', detail: { by, was: a.status } });
    this.#d.logger.warn({ serial, by, was: a.status }, 'audit-log verdict cleared by an operator');
    return state;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const s of this.#sleeping) { clearTimeout(s.timer); s.wake(); }
    await Promise.allSettled([...this.#inflight.values()]);
  }

  /** Waits for the fetch round running for `serial`, if any (tests, admin). */
  async settled(serial: string): Promise<void> { await this.#inflight.get(serial); }

  #start(serial: string): Promise<void> {
    const running = this.#inflight.get(serial);
    if (running) return running;
    const p = this.#round(serial)
      .catch((err: unknown) => this.#d.logger.error({ serial, err }, 'audit-log policy round failed'))
      .finally(() => this.#inflight.delete(serial));
    this.#inflight.set(serial, p);
    return p;
  }

  async #round(serial: string): Promise<void> {
    const { attempts, retryDelayMs } = this.#d.config;
    let lastErr: unknown;
    for (let i = 1; i <= attempts && !this.#stopped; i++) {
      try {
        const { voucher, log } = await this.#d.audit.fetchLog(serial);
        await this.#judge(serial, voucher.issuedAt, log);
        return;
      } catch (err) {
        lastErr = err;
        // A refusal or an unparsable log will not change by asking again this round.
        if (!isTransient(err)) break;
        if (i < attempts) await this.#sleep(retryDelayMs);
      }
    }
    if (this.#stopped) return;
    const rec = await this.#d.store.getPledge(serial);
    if (!rec?.voucherIssuedAt) return; // nothing was ever vouched: nothing to hold a verdict on
    const error = lastErr instanceof Error ? lastErr.message.slice(0, 300) : String(lastErr);
    const cur = auditStateOf(rec);
    const log = this.#d.logger.child({ serial, auditPolicy: this.mode });
    if (this.mode === 'enforce') log.error({ alert: true, error }, 'MASA audit log unavailable: enrollment held back');
    else log.warn({ error }, 'MASA audit log unavailable');
    // A standing violation is kept: only an operator lifts it.
    const keep = cur?.status === 'failed';
    const state: PledgeAuditState = { status: 'unavailable', voucherIssuedAt: rec.voucherIssuedAt, at: this.#d.now().toISOString(), error };
    await this.#d.store.updatePledge(serial, keep ? {} : auditPatch(state), { type: 'audit-policy', detail: { verdict: 'unavailable', error, ...(keep ? { standing: 'failed' } : {}) } });
  }

  async #judge(serial: string, voucherIssuedAt: string, log: AuditLog): Promise<void> {
    const violations = evaluateAuditLog(log, { ours: this.#d.audit.ourDomainIds, allowed: this.#allowed, requireNonce: this.#d.config.requireNonce });
    const rec = await this.#d.store.getPledge(serial);
    const cur = auditStateOf(rec);
    const failed = violations.length > 0;
    const l = this.#d.logger.child({ serial, auditPolicy: this.mode });
    if (failed) {
      l[this.mode === 'enforce' ? 'error' : 'warn']({ alert: true, violations }, this.mode === 'enforce'
        ? 'MASA audit log violates the audit policy: EST refused for this pledge until an operator clears it'
        : 'MASA audit log violates the audit policy');
    } else l.info({ events: log.events.length }, 'MASA audit log passes the audit policy');
    const keep = !failed && cur?.status === 'failed';
    const state: PledgeAuditState = {
      status: failed ? 'failed' : 'passed', voucherIssuedAt, at: this.#d.now().toISOString(), events: log.events.length,
      ...(failed ? { violations: violations.slice(0, MAX_RECORDED_VIOLATIONS) } : {}),
    };
    await this.#d.store.updatePledge(serial, keep ? {} : auditPatch(state), {
      type: 'audit-policy',
      detail: { verdict: state.status, events: log.events.length, violations: violations.length, ...(keep ? { standing: 'failed' } : {}) },
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const s = { timer: setTimeout(() => { this.#sleeping.delete(s); resolve(); }, ms), wake: resolve };
      this.#sleeping.add(s);
    });
  }
}

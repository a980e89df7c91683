/**
 * The requestvoucher use case: authenticate the pledge, verify its PVR, admit it, and obtain a
 * voucher from its MASA — inline when the MASA answers, else 202 + Retry-After while a bounded
 * background queue keeps trying (digest §3.3 DECISION). The outcome is stored per exact PVR
 * (SHA-256 of its bytes), shared by every registrar process on the store, so the pledge's
 * identical retry (digest §2.3) gets the voucher once it exists, wherever it lands.
 * Nothing is stored for a request that fails authentication or PVR checks.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import type { Signer } from '@brski/shared/crypto/signer';
import { BrskiError, type ErrorCode } from '@brski/shared/errors';
import { VOUCHER_MEDIA_TYPE, acceptAdmits, negotiateVoucherFormat, type VoucherFormat } from '@brski/shared/media';
import type { Metrics } from '@brski/shared/observability/metrics';
import { MasaClient, isMasaRedirect, isTransient } from '../masa-client/client.ts';
import type { RegistrarStore, VoucherJob } from '../store/types.ts';
import { AdmissionPolicy } from './admission.ts';
import { identifyPledge, masaBaseFor, type Manufacturer, type PledgeIdentity, type RegistrarIdentity } from './identity.ts';
import { verifyPvr, type VerifiedPvr } from './pvr.ts';
import { buildRvr } from './rvr.ts';
import { acceptVoucher } from './voucher-check.ts';

export interface VoucherServiceConfig {
  retryAfter: number;
  /** MASA client bounds (one round of attempts), used to size the lifetime of a pending job. */
  timeoutMs: number;
  attempts: number;
  backgroundAttempts: number;
  backgroundDelayMs: number;
  queueSize: number;
  jobTtlSeconds: number;
  maxBytes: number;
}

export interface VoucherServiceDeps {
  store: RegistrarStore;
  policy: AdmissionPolicy;
  masa: MasaClient;
  signer: Signer;
  registrar: RegistrarIdentity;
  /** TLS EE … domain root, embedded in RVRs. */
  registrarChain: X509Certificate[];
  manufacturers: readonly Manufacturer[];
  config: VoucherServiceConfig;
  logger: Logger;
  metrics: Metrics;
  now?: () => Date;
}

/**
 * `pledgeAccept`: the pledge's Accept header (absent: none sent). `masaAccept`: the same, when it
 * excluded the PVR's format and so goes to the MASA (digest §3.2 DECISION).
 */
interface Exchange {
  pvr: VerifiedPvr; pledge: PledgeIdentity; masaBase: string; rvr: Uint8Array; digest: string;
  pledgeAccept?: string; masaAccept?: string;
}

/** A voucher as it goes to the pledge, and its format (the PVR's, unless the pledge's Accept asked otherwise). */
export interface RelayedVoucher { voucher: Uint8Array; format: VoucherFormat }

/**
 * A voucher the MASA issued and we verified, but could not record because our store failed. The
 * MASA has consumed the PVR's nonce, so this copy is the only way the pledge's retry of the same
 * PVR can still succeed: it is kept in this process until it is recorded (on that retry, or by the
 * flush timer), and only ever handed out after it is recorded.
 */
interface HeldVoucher { ex: Exchange; job: VoucherJob; relay: Uint8Array; format: VoucherFormat; issuedAt: string; detail: Record<string, unknown> }

export class VoucherService {
  readonly #d: VoucherServiceDeps;
  readonly #now: () => Date;
  readonly #background = new Map<string, { timer?: NodeJS.Timeout; running?: Promise<void> }>();
  #stopped = false;
  readonly #held = new Map<string, HeldVoucher>();
  #flushTimer: NodeJS.Timeout | undefined;
  readonly #outcomes;
  readonly #queue;
  readonly #heldGauge;

  constructor(deps: VoucherServiceDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
    this.#outcomes = deps.metrics.counter('registrar_voucher_requests_total', 'Voucher requests by outcome', ['outcome']);
    this.#queue = deps.metrics.gauge('registrar_masa_background_queue', 'MASA exchanges being retried in the background');
    this.#heldGauge = deps.metrics.gauge('registrar_unrecorded_vouchers', 'Vouchers obtained from a MASA but not yet recorded (store unavailable), held in memory');
  }

  get unrecordedVoucherCount(): number { return this.#held.size; }

  get backgroundQueueLength(): number { return this.#background.size; }

  async requestVoucher(format: VoucherFormat, bytes: Uint8Array, presented: readonly X509Certificate[], accept?: string): Promise<RelayedVoucher> {
    // The MASA is asked for the PVR's own format (digest §3.2 DECISION) unless the pledge's Accept
    // excludes it: then the pledge's list goes to the MASA. Nothing we could relay at all: 406, early.
    let masaAccept: string | undefined;
    if (!acceptAdmits(accept, format)) {
      negotiateVoucherFormat(accept, format);
      masaAccept = accept;
    }
    const at = this.#now();
    const pledge = identifyPledge(presented, this.#d.manufacturers, at);
    const pvr = await verifyPvr(format, bytes, pledge, this.#d.registrar, { maxBytes: this.#d.config.maxBytes });
    const log = this.#d.logger.child({ serial: pledge.serial, format });
    if (pvr.unknown.length > 0) log.info({ unknown: pvr.unknown }, 'voucher-request carries unknown members (ignored)');

    const record = await this.#d.store.getPledge(pledge.serial);
    if (record?.state === 'revoked') throw new BrskiError('device-revoked', `pledge ${pledge.serial} has been revoked by an operator`);
    // Only an identity the MASA has vouched for counts as known: a stranger's failed attempt must not
    // lock the genuine device out. Once a voucher was issued it stays known whatever the state says
    // now (a failure report, or a refused retry, sets `failed` but does not make the serial free).
    const vouched = record?.voucherIssuedAt !== undefined || record?.state === 'voucher-issued' || record?.state === 'enrolled';
    if (vouched && record.idevidFingerprint && record.idevidFingerprint !== pledge.fingerprint) {
      // Same serial, another IDevID certificate: a cloned device, or a manufacturer re-issue an operator
      // must confirm (by deleting or revoking the old record). Never overwrite the known identity silently.
      log.error({ alert: true, known: record.idevidFingerprint, presented: pledge.fingerprint },
        'clone suspected: serial already known with a different IDevID');
      this.#outcomes.inc({ outcome: 'refused' });
      throw new BrskiError('clone-detected', `serial ${pledge.serial} is already known with a different IDevID certificate`);
    }
    const masaBase = masaBaseFor(pledge);

    try {
      await this.#d.policy.admit(pledge.serial, pledge.manufacturer.name, at, async () => {
        await this.#d.store.updatePledge(pledge.serial, this.#identityPatch(pledge, masaBase, format, 'waiting-approval'), { type: 'approval-queued' });
        log.info('pledge queued for operator approval');
      });
    } catch (err) {
      if (err instanceof BrskiError && err.code !== 'pending') {
        await this.#d.store.updatePledge(pledge.serial, { ...this.#identityPatch(pledge, masaBase, format, 'failed'), lastError: err.message },
          { type: 'admission-refused', detail: { reason: err.message } });
        this.#outcomes.inc({ outcome: 'refused' });
      }
      throw err;
    }

    const digest = createHash('sha256').update(bytes).digest('hex');
    const held = this.#held.get(digest);
    if (held) return this.#deliverHeld(held);
    const known = await this.#d.store.getVoucherJob(digest);
    if (known) return this.#answerFromJob(known, format);
    const job: VoucherJob = { pvrDigest: digest, serial: pledge.serial, status: 'pending', updatedAt: at.toISOString(), attempts: 0 };
    if (!(await this.#d.store.createVoucherJob(job, this.#pendingTtl()))) {
      // Another request (maybe another process) is working on this exact PVR.
      const now = await this.#d.store.getVoucherJob(digest);
      if (now) return this.#answerFromJob(now, format);
      throw this.#pending();
    }
    await this.#d.store.updatePledge(pledge.serial, { ...this.#identityPatch(pledge, masaBase, format, 'requested'), lastError: null },
      { type: 'voucher-requested', detail: { masa: masaBase, nonce: pvr.data.nonce !== undefined } });

    let ex: Exchange;
    try {
      const rvr = await buildRvr(pvr, pledge, this.#d.signer, { now: at, registrarChain: this.#d.registrarChain });
      ex = { pvr, pledge, masaBase, rvr, digest, ...(accept === undefined ? {} : { pledgeAccept: accept }),
        ...(masaAccept === undefined ? {} : { masaAccept }) };
    } catch (err) {
      await this.#d.store.deleteVoucherJob(digest);
      throw err;
    }
    try {
      return await this.#exchange(ex, job);
    } catch (err) {
      if (isStoreFailure(err)) {
        // Our own storage failed mid-exchange: never leave a pending job behind that would answer
        // the pledge's retries with 202 (if the delete fails too, the short pending TTL ends it).
        await this.#d.store.deleteVoucherJob(digest).catch(() => undefined);
        throw err;
      }
      if (!isTransient(err)) throw err;
      if (this.#stopped || this.#background.size >= this.#d.config.queueSize) {
        await this.#d.store.deleteVoucherJob(digest);
        this.#outcomes.inc({ outcome: 'unavailable' });
        throw new BrskiError('upstream-unavailable', 'MASA unreachable and the retry queue is full', { retryAfter: this.#d.config.retryAfter, cause: err });
      }
      log.warn({ err: (err as Error).message }, 'MASA not reachable or not ready (202); pledge told to retry, retrying in the background');
      const wait = masaWait(err);
      const delayMs = this.#retryDelayMs(wait);
      // Take the queue slot before any await: concurrent requests must see it, or the bound leaks.
      this.#schedule(ex, { ...job, attempts: 1 }, 1, delayMs);
      if (delayMs > this.#d.config.backgroundDelayMs) {
        // The MASA asked for a longer wait: the pending job must outlive it, or a retry would start a second exchange.
        await this.#d.store.putVoucherJob({ ...job, attempts: 1 }, this.#pendingTtl(delayMs)).catch(() => undefined);
      }
      await this.#d.store.updatePledge(pledge.serial, { lastError: (err as Error).message }, { type: 'masa-deferred', detail: { reason: (err as Error).message } });
      this.#outcomes.inc({ outcome: 'deferred' });
      throw this.#pending(wait);
    }
  }

  /** Lifetime of a job still waiting for the MASA: one round of attempts plus the background delay. */
  #pendingTtl(delayMs = this.#d.config.backgroundDelayMs): number {
    const c = this.#d.config;
    return Math.ceil((c.attempts * c.timeoutMs + delayMs) / 1000) + 10;
  }

  /** Delay before the next background attempt: ours, or longer when the MASA asked for it (Retry-After). */
  #retryDelayMs(masaWaitSeconds: number | undefined): number {
    return Math.max(this.#d.config.backgroundDelayMs, (masaWaitSeconds ?? 0) * 1000);
  }

  #identityPatch(p: PledgeIdentity, masaBase: string, format: VoucherFormat, state: 'requested' | 'waiting-approval' | 'failed') {
    return {
      state, idevidFingerprint: p.fingerprint, idevidIssuer: Buffer.from(p.idevidIssuer).toString('hex'),
      manufacturer: p.manufacturer.name, masaUrl: masaBase, voucherFormat: format,
    };
  }

  /** 202 for the pledge; Retry-After is the MASA's own wait when it gave one (already capped at 60 s). */
  #pending(retryAfter = this.#d.config.retryAfter): BrskiError {
    return new BrskiError('pending', 'voucher not yet available from the MASA', { retryAfter });
  }

  #answerFromJob(job: VoucherJob, pvrFormat: VoucherFormat): RelayedVoucher {
    if (job.status === 'issued' && job.voucher) {
      this.#outcomes.inc({ outcome: 'issued-cached' });
      return { voucher: job.voucher, format: job.voucherFormat ?? pvrFormat };
    }
    if (job.status === 'refused') {
      throw new BrskiError((job.errorCode ?? 'upstream-invalid') as ErrorCode, job.message ?? 'voucher request refused',
        job.httpStatus === undefined ? {} : { httpStatus: job.httpStatus });
    }
    throw this.#pending();
  }

  /** One MASA round (client-side retries included), voucher checks, and the stored outcome. */
  async #exchange(ex: Exchange, job: VoucherJob): Promise<RelayedVoucher> {
    const { pledge, pvr } = ex;
    const tls = pledge.manufacturer.masaTlsAnchors ? { anchors: pledge.manufacturer.masaTlsAnchors } : {};
    try {
      const { voucher, format } = await this.#d.masa.requestVoucher(ex.masaBase, pvr.format, ex.rvr, tls, ex.masaAccept);
      if (!pledgeTakes(ex, format)) {
        throw new BrskiError('upstream-invalid', `MASA answered ${VOUCHER_MEDIA_TYPE[format]}, which the pledge does not accept`,
          { detail: { answered: VOUCHER_MEDIA_TYPE[format], accept: ex.pledgeAccept ?? null } });
      }
      const accepted = await acceptVoucher(format, voucher, pvr, pledge, this.#d.registrar, { at: this.#now(), maxBytes: this.#d.config.maxBytes });
      if (accepted.pinMatch === 'key') {
        this.#d.logger.info({ serial: pledge.serial }, 'voucher pins a certificate with one of our public keys but other bytes (re-issued?): accepted');
      }
      const held: HeldVoucher = { ex, job, relay: accepted.relay, format, issuedAt: this.#now().toISOString(),
        detail: { assertion: accepted.data.assertion, signatureVerified: accepted.signatureVerified } };
      try {
        await this.#record(held);
      } catch (err) {
        if (isStoreFailure(err)) this.#hold(held);
        throw err;
      }
      this.#dropHeldOf(pledge.serial, ex.digest); // an older held voucher must not overwrite this one later
      this.#outcomes.inc({ outcome: 'issued' });
      return { voucher: accepted.relay, format };
    } catch (err) {
      // MASA unreachable, or our own store failing: not a refusal to remember for 4 hours.
      if (isTransient(err) || isStoreFailure(err)) throw err;
      const e = err instanceof BrskiError ? err : new BrskiError('internal', 'voucher exchange failed', { cause: err });
      if (isMasaRedirect(e)) {
        // 502 now, but no decision about the device: drop the job so the identical retry asks the MASA again.
        this.#d.logger.warn({ serial: pledge.serial, reason: e.message, detail: e.detail }, 'MASA answered a redirect; not remembered');
        await this.#d.store.deleteVoucherJob(ex.digest).catch(() => undefined);
        await this.#d.store.updatePledge(pledge.serial, { lastError: e.message }, { type: 'masa-invalid', detail: { code: e.code, reason: e.message } });
        this.#outcomes.inc({ outcome: 'invalid' });
        throw e;
      }
      this.#d.logger.warn({ serial: pledge.serial, code: e.code, reason: e.message, detail: e.detail }, 'MASA exchange refused');
      await this.#d.store.putVoucherJob({ ...job, status: 'refused', errorCode: e.code, httpStatus: e.httpStatus, message: e.message,
        updatedAt: this.#now().toISOString() }, this.#d.config.jobTtlSeconds);
      await this.#d.store.updatePledge(pledge.serial, { state: 'failed', lastError: e.message }, { type: 'voucher-refused', detail: { code: e.code, reason: e.message } });
      this.#outcomes.inc({ outcome: 'refused' });
      throw e;
    }
  }

  /** Voucher, pledge record, then the job: a retry answered from an 'issued' job must find the pledge enrollable. */
  async #record(h: HeldVoucher): Promise<void> {
    const { ex, job } = h;
    await this.#d.store.saveVoucher({
      serial: ex.pledge.serial, format: h.format, voucher: h.relay, rvr: ex.rvr, masaUrl: ex.masaBase, issuedAt: h.issuedAt,
      ...(ex.pvr.data.nonce ? { nonce: Buffer.from(ex.pvr.data.nonce).toString('hex') } : {}),
    });
    await this.#d.store.updatePledge(ex.pledge.serial, { state: 'voucher-issued', voucherIssuedAt: h.issuedAt, lastError: null },
      { type: 'voucher-issued', detail: h.detail });
    await this.#d.store.putVoucherJob({ ...job, status: 'issued', voucher: h.relay, voucherFormat: h.format, updatedAt: h.issuedAt }, this.#d.config.jobTtlSeconds);
  }

  /** Keep a voucher our store could not take; bounded like the background queue (oldest dropped, loudly). */
  #hold(h: HeldVoucher): void {
    if (this.#stopped) {
      this.#d.logger.error({ serial: h.ex.pledge.serial, alert: true }, 'voucher obtained but not recorded, and the registrar is stopping: the pledge must start over');
      return;
    }
    if (!this.#held.has(h.ex.digest) && this.#held.size >= this.#d.config.queueSize) {
      const [oldest] = this.#held.values();
      this.#held.delete(oldest!.ex.digest);
      this.#d.logger.error({ serial: oldest!.ex.pledge.serial, alert: true }, 'unrecorded voucher dropped (hold full): the pledge must start over');
    }
    this.#held.set(h.ex.digest, h);
    this.#heldGauge.set(this.#held.size);
    this.#d.logger.warn({ serial: h.ex.pledge.serial }, 'voucher obtained but the store is unavailable: held in memory until recorded');
    this.#armFlush();
  }

  /** The pledge's retry of the same PVR: record the held voucher first, then hand it out. */
  async #deliverHeld(h: HeldVoucher): Promise<RelayedVoucher> {
    await this.#record(h); // a store failure here is the same 503 + Retry-After; the voucher stays held
    this.#release(h, 'retry');
    this.#outcomes.inc({ outcome: 'issued' });
    return { voucher: h.relay, format: h.format };
  }

  #release(h: HeldVoucher, by: 'retry' | 'flush'): void {
    if (this.#held.get(h.ex.digest) !== h) return;
    this.#held.delete(h.ex.digest);
    this.#heldGauge.set(this.#held.size);
    this.#d.logger.info({ serial: h.ex.pledge.serial, by }, 'held voucher recorded');
  }

  #dropHeldOf(serial: string, except: string): void {
    for (const h of this.#held.values()) {
      if (h.ex.pledge.serial === serial && h.ex.digest !== except) {
        this.#held.delete(h.ex.digest);
        this.#d.logger.info({ serial }, 'held voucher superseded by a newer one');
      }
    }
    this.#heldGauge.set(this.#held.size);
  }

  /** Record held vouchers without waiting for the pledges: every Retry-After interval until none is left. */
  #armFlush(): void {
    if (this.#flushTimer || this.#stopped) return;
    this.#flushTimer = setTimeout(() => {
      void (async () => {
        for (const h of [...this.#held.values()]) {
          try { await this.#record(h); this.#release(h, 'flush'); } catch (err) {
            this.#d.logger.warn({ err: (err as Error).message, held: this.#held.size }, 'held vouchers not recorded yet; trying again later');
            break; // store still away: the rest would fail the same way
          }
        }
        this.#flushTimer = undefined;
        if (this.#held.size > 0) this.#armFlush();
      })();
    }, this.#d.config.retryAfter * 1000);
    this.#flushTimer.unref?.();
  }

  #schedule(ex: Exchange, job: VoucherJob, attempt: number, delayMs: number): void {
    if (this.#stopped) return;
    const slot: { timer?: NodeJS.Timeout; running?: Promise<void> } = this.#background.get(ex.digest) ?? {};
    this.#background.set(ex.digest, slot);
    this.#queue.set(this.#background.size);
    slot.timer = setTimeout(() => {
      slot.running = this.#exchange(ex, { ...job, attempts: attempt + 1 }).then(() => { this.#forget(ex.digest); }, async (err) => {
        if (isTransient(err) && attempt < this.#d.config.backgroundAttempts && !this.#stopped) {
          const next = this.#retryDelayMs(masaWait(err));
          await this.#d.store.putVoucherJob({ ...job, attempts: attempt + 1, updatedAt: this.#now().toISOString() }, this.#pendingTtl(next)).catch(() => undefined);
          this.#schedule(ex, job, attempt + 1, next);
          return;
        }
        this.#forget(ex.digest);
        if (isTransient(err)) {
          // Give up for now; the pledge's next identical retry starts a fresh exchange.
          this.#d.logger.warn({ serial: ex.pledge.serial, attempts: attempt }, 'MASA still unreachable; background retries exhausted');
          await this.#d.store.deleteVoucherJob(ex.digest).catch(() => undefined);
        }
      }).catch((err: unknown) => this.#d.logger.error({ err }, 'background MASA retry failed'));
    }, delayMs);
    slot.timer.unref?.();
  }

  #forget(digest: string): void {
    this.#background.delete(digest);
    this.#queue.set(this.#background.size);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    for (const h of this.#held.values()) {
      try { await this.#record(h); } catch {
        this.#d.logger.error({ serial: h.ex.pledge.serial, alert: true }, 'unrecorded voucher lost at shutdown: the pledge must start over');
      }
    }
    this.#held.clear();
    this.#heldGauge.set(0);
    const running: Promise<void>[] = [];
    for (const slot of this.#background.values()) {
      if (slot.timer) clearTimeout(slot.timer);
      if (slot.running) running.push(slot.running);
    }
    await Promise.allSettled(running);
    this.#background.clear();
  }
}

/**
 * Whether the pledge can take a voucher in `answered` (the MASA may choose the format, digest §3.2):
 * its Accept decides; without one, only its PVR's format will do.
 */
function pledgeTakes(ex: Exchange, answered: VoucherFormat): boolean {
  return ex.pledgeAccept === undefined || !ex.pledgeAccept.trim() ? answered === ex.pvr.format : acceptAdmits(ex.pledgeAccept, answered);
}

/** The MASA's Retry-After on a temporary failure, capped like a pledge's wait (1..60 s, digest §2.3). */
function masaWait(err: unknown): number | undefined {
  const s = err instanceof BrskiError ? err.retryAfter : undefined;
  return s === undefined || !Number.isFinite(s) ? undefined : Math.min(60, Math.max(1, Math.ceil(s)));
}

/** A failure of the registrar's own store (Redis away), mapped to 503 by guardRedisStore. */
function isStoreFailure(err: unknown): boolean {
  return err instanceof BrskiError && err.code === 'unavailable';
}

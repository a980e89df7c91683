/**
 * MASA audit log for one pledge (digest §2.1 h, §7.3): POST the stored RVR (same bytes, same
 * Content-Type) to the pledge's MASA, then flag events whose domainID is not ours — a sign the
 * device was (also) claimed by another domain. Used by the admin API (on demand, verdict recorded
 * in the pledge timeline) and by the audit policy (authority/audit-policy.ts, after voucher_status).
 */
import type { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { BrskiError } from '@brski/shared/errors';
import { domainIdOf } from '@brski/shared/pki/identity';
import { parseAuditLog, type AuditLog } from '@brski/shared/voucher/telemetry';
import type { MasaClient } from '../masa-client/client.ts';
import type { Manufacturer } from '../authority/identity.ts';
import type { RegistrarStore, VoucherRecord } from '../store/types.ts';

export interface AuditVerdict {
  serial: string;
  masaUrl: string;
  log: AuditLog;
  ourDomainIds: string[];
  /** Events naming another domain. */
  foreignEvents: AuditLog['events'];
  onlyOurDomain: boolean;
}

/** The log as the MASA returned it, with the voucher record whose RVR obtained it. */
export interface FetchedAuditLog {
  voucher: VoucherRecord;
  log: AuditLog;
}

export class AuditLogService {
  readonly #ours: Set<string>;

  constructor(private readonly d: {
    store: RegistrarStore; masa: MasaClient; manufacturers: readonly Manufacturer[]; pinnable: readonly X509Certificate[]; logger: Logger;
  }) {
    this.#ours = new Set(d.pinnable.map((c) => Buffer.from(domainIdOf(c)).toString('base64')));
  }

  /** Our domainIDs (base64): one per certificate a MASA may pin for us. */
  get ourDomainIds(): ReadonlySet<string> { return this.#ours; }

  /** POSTs the stored RVR to the MASA's requestauditlog and parses the answer; records nothing. */
  async fetchLog(serial: string): Promise<FetchedAuditLog> {
    const pledge = await this.d.store.getPledge(serial);
    const voucher = await this.d.store.getVoucher(serial);
    if (!pledge || !voucher) throw new BrskiError('not-found', `no voucher was obtained for ${serial}; nothing to audit`);
    const m = this.d.manufacturers.find((x) => x.name === pledge.manufacturer);
    const tls = m?.masaTlsAnchors ? { anchors: m.masaTlsAnchors } : {};
    const log = parseAuditLog(await this.d.masa.requestAuditLog(voucher.masaUrl, voucher.format, voucher.rvr, tls));
    return { voucher, log };
  }

  /** Admin API: fetch, flag foreign domains, record an `audit-log` timeline event. */
  async fetch(serial: string): Promise<AuditVerdict> {
    const { voucher, log } = await this.fetchLog(serial);
    const foreignEvents = log.events.filter((e) => !this.#ours.has(normalizeB64(e.domainID)));
    const verdict: AuditVerdict = {
      serial, masaUrl: voucher.masaUrl, log, ourDomainIds: [...this.#ours], foreignEvents, onlyOurDomain: foreignEvents.length === 0,
    };
    if (!verdict.onlyOurDomain) {
      this.d.logger.warn({ serial, foreignDomains: foreignEvents.map((e) => e.domainID) }, 'MASA audit log lists other domains for this pledge');
    }
    await this.d.store.updatePledge(serial, {}, { type: 'audit-log', detail: { events: log.events.length, foreignEvents: foreignEvents.length } });
    return verdict;
  }
}

/** domainID is base64 text; compare after normalising the alphabet and padding. */
export function normalizeB64(s: string): string {
  try {
    return Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('base64');
  } catch {
    return s;
  }
}

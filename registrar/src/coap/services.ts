/**
 * What the CoAP resources need from the registrar, as one interface: the resources parse and
 * answer, these functions decide. `registrarServices` binds it to the registrar's authority
 * (VoucherService), domain CA and store.
 *
 * INTERIM (reported to the registrar owner): the HTTPS routes keep two decisions inline that
 * CoAP needs too — the simpleenroll gate (voucher issued to this IDevID within the window) and
 * the telemetry sender/recording. Until they are exported as service functions, `enrollGate`
 * and `recordTelemetry` below follow registrar/src/routes/{est,brski}.ts exactly; replace them
 * by calls to the exported functions once available.
 */
import type { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { BrskiError } from '@brski/shared/errors';
import { parseStatusTelemetry } from '@brski/shared/voucher/telemetry';
import { identifyPledge, type Manufacturer } from '../authority/identity.ts';
import type { VoucherService } from '../authority/voucher-service.ts';
import type { DomainCa } from '../ca/domain-ca.ts';
import type { RegistrarStore, StatusReport } from '../store/types.ts';

export type TelemetryKind = 'voucherStatus' | 'enrollStatus';

export interface CoapsServices {
  /** COSE PVR in, COSE voucher (unprotected x5bag stripped) out; throws BrskiError. */
  requestVoucher(pvr: Uint8Array, presented: readonly X509Certificate[]): Promise<Uint8Array>;
  recordTelemetry(kind: TelemetryKind, body: Uint8Array, type: 'json' | 'cbor', presented: readonly X509Certificate[]): Promise<void>;
  /** RFC 9148: every EST-coaps function needs an authenticated client (IDevID of a known manufacturer, or our LDevID). */
  authenticateClient(presented: readonly X509Certificate[]): Promise<void>;
  /** Issuing CA first, then its parents. */
  caCertificates(): X509Certificate[];
  csrAttrs(): Uint8Array;
  enroll(csr: Uint8Array, presented: readonly X509Certificate[]): Promise<X509Certificate>;
  reenroll(csr: Uint8Array, presented: readonly X509Certificate[]): Promise<X509Certificate>;
}

export interface RegistrarServiceDeps {
  vouchers: VoucherService;
  store: RegistrarStore;
  ca: DomainCa;
  manufacturers: readonly Manufacturer[];
  voucherWindowSeconds: number;
  logger: Logger;
  now: () => Date;
}

export function registrarServices(d: RegistrarServiceDeps): CoapsServices {
  const isOurLdevid = async (leaf: X509Certificate): Promise<string | undefined> => {
    const rec = await d.store.getCertificate(leaf.serialNumber.toUpperCase());
    return rec && Buffer.from(rec.der).equals(leaf.raw) && leaf.checkIssued(d.ca.certificate) && leaf.verify(d.ca.certificate.publicKey)
      ? rec.pledgeSerial : undefined;
  };

  // Mirrors routes/est.ts simpleenroll (INTERIM, see header).
  async function enrollGate(presented: readonly X509Certificate[]) {
    const pledge = identifyPledge(presented, d.manufacturers, d.now());
    const rec = await d.store.getPledge(pledge.serial);
    if (rec?.state === 'revoked') throw new BrskiError('device-revoked', `device ${pledge.serial} is revoked`);
    const issuedAt = rec?.voucherIssuedAt ? Date.parse(rec.voucherIssuedAt) : NaN;
    if (!rec || rec.idevidFingerprint !== pledge.fingerprint || !Number.isFinite(issuedAt)) {
      throw new BrskiError('no-voucher', `no voucher was issued to this IDevID (${pledge.serial}); request a voucher first`);
    }
    if (d.now().getTime() - issuedAt > d.voucherWindowSeconds * 1000) {
      throw new BrskiError('no-voucher', `the voucher for ${pledge.serial} is older than the ${d.voucherWindowSeconds} s enrollment window`);
    }
    return pledge;
  }

  return {
    requestVoucher: (pvr, presented) => d.vouchers.requestVoucher('cose', pvr, presented, 'application/voucher+cose'),

    // Mirrors routes/brski.ts telemetry (INTERIM, see header).
    async recordTelemetry(kind, body, type, presented) {
      const leaf = presented[0];
      if (!leaf) throw new BrskiError('unauthenticated', 'a DTLS client certificate is required');
      let who: { serial: string; authenticated: boolean; via: 'ldevid' | 'idevid' };
      const ldevidOf = await isOurLdevid(leaf);
      if (ldevidOf) {
        who = { serial: ldevidOf, authenticated: true, via: 'ldevid' };
      } else {
        const p = identifyPledge(presented, d.manufacturers, d.now());
        const stored = await d.store.getPledge(p.serial);
        if (!stored) throw new BrskiError('not-found', `no onboarding in progress for ${p.serial}`);
        who = { serial: p.serial, authenticated: stored.idevidFingerprint === p.fingerprint, via: 'idevid' };
      }
      const t = parseStatusTelemetry(body, type);
      const report: StatusReport = {
        at: d.now().toISOString(), version: t.version, status: t.status, authenticated: who.authenticated,
        ...(t.reason === undefined ? {} : { reason: t.reason }), ...(t.reasonContext === undefined ? {} : { reasonContext: t.reasonContext }),
      };
      const l = d.logger.child({ serial: who.serial, telemetry: kind, via: who.via, authenticated: who.authenticated, transport: 'coaps' });
      if (t.unknownKeys.length > 0) l.info({ unknownKeys: t.unknownKeys }, 'status telemetry carries unknown keys');
      if (t.version > 1) l.warn({ version: t.version }, 'status telemetry version > 1: newer pledge protocol, operator attention needed');
      if (t.status) l.info('pledge reports success');
      else l.warn({ reason: t.reason, reasonContext: t.reasonContext }, 'pledge reports failure');
      await d.store.updatePledge(who.serial, {
        [kind]: report,
        ...(t.status ? {} : { state: 'failed' as const, lastError: `${kind === 'voucherStatus' ? 'voucher' : 'enroll'} status: ${t.reason ?? 'failure'}` }),
      }, { type: kind === 'voucherStatus' ? 'voucher-status' : 'enroll-status', detail: { status: t.status, ...(t.reason ? { reason: t.reason } : {}), via: who.via } });
    },

    async authenticateClient(presented) {
      const leaf = presented[0];
      if (!leaf) throw new BrskiError('unauthenticated', 'EST-coaps needs an authenticated DTLS client (RFC 9148)');
      if (await isOurLdevid(leaf)) {
        await d.ca.currentRecordFor(leaf);
        return;
      }
      identifyPledge(presented, d.manufacturers, d.now());
    },

    caCertificates: () => d.ca.cacerts(),
    csrAttrs: () => d.ca.csrAttrs(),

    async enroll(csr, presented) {
      const pledge = await enrollGate(presented);
      return d.ca.enroll(csr, pledge.serial, pledge.idevid);
    },

    async reenroll(csr, presented) {
      const leaf = presented[0];
      if (!leaf) throw new BrskiError('unauthenticated', 'sren needs the current LDevID as DTLS client certificate');
      return d.ca.reenroll(csr, leaf);
    },
  };
}

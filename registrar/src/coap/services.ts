/**
 * What the CoAP resources need from the registrar, as one interface: the resources parse and
 * answer, these functions decide. `registrarServices` binds it to the registrar's authority
 * (VoucherService), domain CA and store, and to the same decision functions the HTTPS routes use
 * (`authorizeEnrollment` from routes/est.ts, `recordTelemetry` from routes/brski.ts), so both
 * transports enforce identical rules.
 */
import type { X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { BrskiError } from '@brski/shared/errors';
import { identifyPledge, type Manufacturer } from '../authority/identity.ts';
import type { VoucherService } from '../authority/voucher-service.ts';
import type { AuditPolicyService } from '../authority/audit-policy.ts';
import type { DomainCa } from '../ca/domain-ca.ts';
import type { RegistrarStore } from '../store/types.ts';
import { authorizeEnrollment } from '../routes/est.ts';
import { recordTelemetry, type TelemetryKind } from '../routes/brski.ts';

export type { TelemetryKind };

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
  /** The registrar's audit-log policy, the same object the HTTPS routes use (`/vs` starts it, `/sen` is gated by it). */
  audit: AuditPolicyService;
}

export function registrarServices(d: RegistrarServiceDeps): CoapsServices {
  const isOurLdevid = async (leaf: X509Certificate): Promise<string | undefined> => {
    const rec = await d.store.getCertificate(leaf.serialNumber.toUpperCase());
    return rec && Buffer.from(rec.der).equals(leaf.raw) && leaf.checkIssued(d.ca.certificate) && leaf.verify(d.ca.certificate.publicKey)
      ? rec.pledgeSerial : undefined;
  };

  return {
    // cBRSKI: the voucher is always COSE (digest §3.2), so only its bytes go back.
    requestVoucher: async (pvr, presented) => (await d.vouchers.requestVoucher('cose', pvr, presented, 'application/voucher+cose')).voucher,

    recordTelemetry: (kind, body, type, presented) =>
      recordTelemetry(d, kind, body, type, presented, d.logger.child({ transport: 'coaps' })),

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
      const pledge = identifyPledge(presented, d.manufacturers, d.now());
      await authorizeEnrollment(d, pledge);
      return d.ca.enroll(csr, pledge.serial, pledge.idevid);
    },

    async reenroll(csr, presented) {
      const leaf = presented[0];
      if (!leaf) throw new BrskiError('unauthenticated', 'sren needs the current LDevID as DTLS client certificate');
      return d.ca.reenroll(csr, leaf);
    },
  };
}

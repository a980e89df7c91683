/**
 * Admin operations on the MASA's records: sales-record claims, revocation, ownership policy per
 * device and product line, device import (IDevIDs made elsewhere), audit log and factory reports.
 * Every change is logged with what changed (never the token).
 */
import { X509Certificate } from 'node:crypto';
import { BrskiError } from '@brski/shared/errors';
import { verifyChain } from '@brski/shared/pki/chain';
import { domainIdOf, idevidIssuerOf, serialNumberOf, spkiSha256 } from '@brski/shared/pki/identity';
import type { Logger } from '@brski/shared/observability/logger';
import { verifyAuditChain, type ChainCheck } from '../store/audit-chain.ts';
import type { AuditEntry, DeviceRecord, IssuanceRecord, MasaStore, Ownership, OwnershipPolicy, RegisterResult } from '../store/types.ts';

export interface DomainRef { domainCert?: string; domainId?: string }

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

function strictBase64(text: string, what: string): Buffer {
  const clean = text.replace(/\s+/g, '');
  const buf = Buffer.from(clean, 'base64');
  if (!clean || buf.toString('base64').replace(/=+$/, '') !== clean.replace(/=+$/, '')) {
    throw new BrskiError('malformed', `${what} must be standard base64`);
  }
  return buf;
}

export class AdminService {
  constructor(private readonly store: MasaStore, private readonly idevidAnchors: readonly X509Certificate[],
    private readonly logger: Logger) {}

  /** domainID from a domain CA certificate (SKI, else SPKI SHA-256) or given directly (base64). */
  domainIdFrom(ref: DomainRef): string {
    if (ref.domainCert !== undefined) {
      let cert: X509Certificate;
      try { cert = new X509Certificate(strictBase64(ref.domainCert, 'domainCert')); } catch (e) {
        throw e instanceof BrskiError ? e : new BrskiError('malformed', 'domainCert is not a DER certificate');
      }
      return b64(domainIdOf(cert));
    }
    if (ref.domainId !== undefined) {
      const id = strictBase64(ref.domainId, 'domainId');
      if (id.length < 8 || id.length > 64) throw new BrskiError('malformed', 'domainId must be 8..64 bytes');
      return id.toString('base64');
    }
    throw new BrskiError('malformed', 'give domainCert (base64 DER) or domainId (base64)');
  }

  async device(serial: string): Promise<{ device: DeviceRecord; ownership: Ownership }> {
    const device = await this.store.getDevice(serial);
    if (!device) throw new BrskiError('not-found', `device ${serial} is not known`);
    return { device, ownership: await this.store.getOwnership(serial) };
  }

  /** Imports an IDevID made outside our factory (must chain to our IDevID CA and carry this serial). */
  async importDevice(serial: string, certB64: string, productLine: string, location = '', policy?: OwnershipPolicy,
    quiet = false): Promise<RegisterResult> {
    let cert: X509Certificate;
    try { cert = new X509Certificate(strictBase64(certB64, 'certificate')); } catch (e) {
      throw e instanceof BrskiError ? e : new BrskiError('malformed', 'certificate is not a DER certificate');
    }
    verifyChain(cert, [], this.idevidAnchors, new Date());
    if (serialNumberOf(cert) !== serial) throw new BrskiError('serial-mismatch', `certificate serialNumber is not ${serial}`);
    const record: DeviceRecord = {
      serial, idevidIssuer: b64(idevidIssuerOf(cert)), keyFingerprint: Buffer.from(spkiSha256(cert)).toString('hex'),
      station: 'admin-import', issuedAt: new Date().toISOString(), location, productLine, revoked: false,
      certificate: b64(new Uint8Array(cert.raw)), certificateSerial: cert.serialNumber.toLowerCase(),
      ...(policy ? { policy } : {}),
    };
    const r = await this.store.registerDevice(record);
    if (r.status === 'clone') {
      this.logger.error({ alert: 'clone-attempt', serial, via: 'admin-import' }, 'ALERT: import of an issued serial with a different key');
      throw new BrskiError('clone-detected', `serial ${serial} is on record with a different key`);
    }
    if (!quiet) this.logger.info({ serial, productLine, status: r.status }, 'admin: device imported');
    return r;
  }

  async claim(serial: string, ref: DomainRef): Promise<string> {
    await this.device(serial);
    const id = this.domainIdFrom(ref);
    await this.store.claim(serial, id);
    this.logger.info({ serial, domainId: id }, 'admin: device claimed');
    return id;
  }

  async unclaim(serial: string, ref: DomainRef): Promise<boolean> {
    const id = this.domainIdFrom(ref);
    const changed = await this.store.unclaim(serial, id);
    this.logger.info({ serial, domainId: id, changed }, 'admin: device unclaimed');
    return changed;
  }

  async revoke(serial: string, reason: string, revoked = true): Promise<void> {
    if (!(await this.store.setRevoked(serial, revoked, reason))) throw new BrskiError('not-found', `device ${serial} is not known`);
    this.logger.warn({ serial, reason, revoked }, revoked ? 'admin: device revoked' : 'admin: device revocation lifted');
  }

  async setDevicePolicy(serial: string, policy: OwnershipPolicy | null): Promise<void> {
    if (!(await this.store.setDevicePolicy(serial, policy))) throw new BrskiError('not-found', `device ${serial} is not known`);
    this.logger.info({ serial, policy }, 'admin: device policy set');
  }

  async setProductLinePolicy(line: string, policy: OwnershipPolicy | null): Promise<void> {
    await this.store.setProductLinePolicy(line, policy);
    this.logger.info({ productLine: line, policy }, 'admin: product line policy set');
  }

  async audit(serial: string): Promise<{ entries: AuditEntry[]; chain: ChainCheck }> {
    const entries = await this.store.readAudit(serial);
    return { entries, chain: verifyAuditChain(entries) };
  }

  async report(station: string | undefined, from: Date, to: Date): Promise<{ station: string | null; from: string; to: string;
    count: number; byProductLine: Record<string, number>; records: IssuanceRecord[] }> {
    const records = await this.store.issuanceReport(station, from, to);
    const byProductLine: Record<string, number> = {};
    for (const r of records) byProductLine[r.productLine] = (byProductLine[r.productLine] ?? 0) + 1;
    return { station: station ?? null, from: from.toISOString(), to: to.toISOString(), count: records.length, byProductLine, records };
  }
}

/**
 * Factory IDevID issuance (issue #3 item 6): an authenticated station posts a CSR made inside the
 * device's secure element plus the serial; the MASA checks the proof of possession, refuses a
 * serial already issued with a different key (clone attempt — alerted), issues the IDevID from
 * the IDevID CA (whose key stays in this backend) and records serial → key → station → time →
 * location. Retrying with the same key returns the certificate already issued.
 */
import { X509Certificate } from 'node:crypto';
import type { Signer } from '@brski/shared/crypto/signer';
import { BrskiError } from '@brski/shared/errors';
import { idevidProfile, issueCertificate } from '@brski/shared/pki/certificate';
import { verifyCsr } from '@brski/shared/pki/csr';
import { idevidIssuerOf, spkiSha256 } from '@brski/shared/pki/identity';
import type { Logger } from '@brski/shared/observability/logger';
import type { Metrics } from '@brski/shared/observability/metrics';
import type { Counter } from 'prom-client';
import { z } from 'zod';
import type { DeviceRecord, MasaStore } from '../store/types.ts';
import { authenticateStation, type StationAuthConfig } from './station-auth.ts';

export interface FactoryConfig extends StationAuthConfig {
  /** IDevID CA signer (key + CA certificate chain). */
  caSigner: Signer;
  caCertificate: X509Certificate;
  masaUrl: string;
  rateLimit: { max: number; windowSeconds: number };
  /** Per-station overrides: allowed product lines and location. */
  stations: Readonly<Record<string, { productLines?: readonly string[]; location?: string; rateLimit?: { max: number; windowSeconds: number } }>>;
  defaultProductLine: string;
  /** Undefined → 99991231235959Z (802.1AR IDevIDs do not expire). */
  validityDays: number | undefined;
}

// PrintableString characters, bounded: the serial goes into the subject serialNumber attribute.
const SERIAL_RE = /^[A-Za-z0-9 '()+,\-./:=?]{1,64}$/;

export const issueRequestSchema = z.object({
  serialNumber: z.string().regex(SERIAL_RE, 'PrintableString of 1..64 characters'),
  csr: z.string().min(1).max(8192),
  productLine: z.string().min(1).max(64).regex(/^[A-Za-z0-9._-]+$/).optional(),
  location: z.string().max(128).optional(),
}).strict();
export type IssueRequest = z.infer<typeof issueRequestSchema>;

export interface IssueResult { status: 'created' | 'exists'; device: DeviceRecord; certificate: Uint8Array; chain: Uint8Array[] }

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export class FactoryIssuer {
  readonly #issued: Counter<'station'> | undefined;
  readonly #clones: Counter | undefined;

  constructor(private readonly cfg: FactoryConfig, private readonly store: MasaStore, private readonly logger: Logger,
    metrics?: Metrics, private readonly now: () => Date = () => new Date()) {
    this.#issued = metrics?.counter('masa_idevids_issued_total', 'IDevIDs issued to factory stations', ['station']);
    this.#clones = metrics?.counter('masa_clone_attempts_total', 'IDevID requests for an issued serial with another key');
  }

  station(peerChain: readonly X509Certificate[]): ReturnType<typeof authenticateStation> {
    return authenticateStation(peerChain, this.cfg, this.now());
  }

  async issue(peerChain: readonly X509Certificate[], body: unknown): Promise<IssueResult> {
    const at = this.now();
    const station = authenticateStation(peerChain, this.cfg, at);
    const st = this.cfg.stations[station.id] ?? {};
    const limit = st.rateLimit ?? this.cfg.rateLimit;
    const rate = await this.store.consumeRate(station.id, limit.max, limit.windowSeconds, at.getTime());
    if (!rate.allowed) {
      throw new BrskiError('rate-limited', `factory: station ${station.id} is over its limit of ${limit.max} per ${limit.windowSeconds} s`,
        { retryAfter: Math.max(1, Math.ceil((rate.resetAt - at.getTime()) / 1000)), detail: { station: station.id, count: rate.count } });
    }

    const parsed = issueRequestSchema.safeParse(body);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      throw new BrskiError('malformed', `factory: ${i.path.join('.') || 'body'}: ${i.message}`);
    }
    const req = parsed.data;
    const productLine = req.productLine ?? this.cfg.defaultProductLine;
    if (st.productLines && !st.productLines.includes(productLine)) {
      throw new BrskiError('forbidden', `factory: station ${station.id} may not issue for product line ${productLine}`);
    }
    const der = Buffer.from(req.csr, 'base64');
    if (der.length === 0 || der.toString('base64').replace(/=+$/, '') !== req.csr.replace(/\s+/g, '').replace(/=+$/, '')) {
      throw new BrskiError('bad-csr', 'factory: csr must be standard base64 of a DER PKCS#10 request');
    }
    const csr = verifyCsr(new Uint8Array(der)); // proof of possession
    const csrSerial = csr.subject.find(([k]) => k === 'serialNumber')?.[1];
    if (csrSerial !== undefined && csrSerial !== req.serialNumber) {
      throw new BrskiError('bad-csr', `factory: CSR subject serialNumber ${JSON.stringify(csrSerial)} differs from ${JSON.stringify(req.serialNumber)}`);
    }
    const curve = csr.publicKey.asymmetricKeyDetails?.namedCurve;
    if (csr.publicKey.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'secp384r1')) {
      throw new BrskiError('bad-csr', 'factory: IDevID keys must be EC P-256 or P-384');
    }
    const keyFingerprint = hex(spkiSha256(csr.publicKey));

    const existing = await this.store.getDevice(req.serialNumber);
    if (existing) return this.#existing(existing, keyFingerprint, station.id);

    const profileOpts = this.cfg.validityDays === undefined ? {} : { notAfter: new Date(at.getTime() + this.cfg.validityDays * 86_400_000) };
    const cert = await issueCertificate(idevidProfile(req.serialNumber, this.cfg.masaUrl, csr.publicKey, profileOpts),
      { signer: this.cfg.caSigner, certificate: this.cfg.caCertificate });
    const device: DeviceRecord = {
      serial: req.serialNumber, idevidIssuer: Buffer.from(idevidIssuerOf(cert)).toString('base64'), keyFingerprint,
      station: station.id, issuedAt: at.toISOString(), location: req.location ?? st.location ?? '', productLine,
      revoked: false, certificate: Buffer.from(cert.raw).toString('base64'), certificateSerial: cert.serialNumber.toLowerCase(),
    };
    const reg = await this.store.registerDevice(device);
    if (reg.status !== 'created') return this.#existing(reg.device, keyFingerprint, station.id); // lost a race
    await this.store.recordIssuance({ serial: device.serial, station: device.station, issuedAt: device.issuedAt, keyFingerprint,
      location: device.location, productLine, certificateSerial: device.certificateSerial });
    this.#issued?.inc({ station: station.id });
    this.logger.info({ serial: device.serial, station: station.id, productLine, location: device.location, keyFingerprint,
      certificateSerial: device.certificateSerial }, 'IDevID issued');
    return { status: 'created', device, certificate: new Uint8Array(cert.raw), chain: this.#chain() };
  }

  #existing(device: DeviceRecord, keyFingerprint: string, station: string): IssueResult {
    if (device.keyFingerprint !== keyFingerprint) {
      this.#clones?.inc();
      this.logger.error({ alert: 'clone-attempt', serial: device.serial, station, originalStation: device.station,
        keyFingerprint, recordedKey: device.keyFingerprint }, 'ALERT: IDevID requested for an issued serial with a different key');
      throw new BrskiError('clone-detected', `factory: serial ${device.serial} was already issued with a different key`,
        { detail: { serial: device.serial, station } });
    }
    return { status: 'exists', device, certificate: new Uint8Array(Buffer.from(device.certificate, 'base64')), chain: this.#chain() };
  }

  #chain(): Uint8Array[] {
    return [this.cfg.caCertificate, ...this.cfg.caSigner.certificates.filter((c) => c.fingerprint256 !== this.cfg.caCertificate.fingerprint256)]
      .map((c) => new Uint8Array(c.raw));
  }
}

/**
 * The domain CA behind EST (digest §4, issue items 4–5): LDevID issuance with a configurable
 * profile, re-enrollment that supersedes (never overwrites) the previous certificate,
 * revocation, and a CRL regenerated whenever the revocation set changes.
 *
 * Certificate serials: 8 random bytes (unpredictable, CA/B-style entropy) followed by an
 * 8-byte counter from the store (INCR), so two registrar processes sharing a store can never
 * issue the same serial even if their random parts collided.
 */
import { randomBytes, type KeyObject, type X509Certificate } from 'node:crypto';
import type { Signer } from '@brski/shared/crypto/signer';
import { BrskiError, ChainError } from '@brski/shared/errors';
import { issueCertificate, ldevidProfile } from '@brski/shared/pki/certificate';
import { verifyChain } from '@brski/shared/pki/chain';
import { createCrl } from '@brski/shared/pki/crl';
import { verifyCsr, type ParsedCsr } from '@brski/shared/pki/csr';
import type { DistinguishedName, ExtensionInput } from '@brski/shared/pki/extensions';
import { spkiDer } from '@brski/shared/pki/identity';
import { csrAttr, encodeCsrAttrs } from '@brski/shared/est/csrattrs';
import type { CertificateRecord, PledgeRecord, RegistrarStore, RevocationReason } from '../store/types.ts';
import { assertReenrollIdentity, crlDistributionPointExtension, currentIdentity } from './ldevid-identity.ts';

export interface LdevidProfileConfig {
  lifetimeDays: number;
  subjectCn: string;
  subjectSerialNumber: boolean;
  sanDns?: string;
  keyCurve: 'P-256' | 'P-384';
}

export interface DomainCaOptions {
  /** CA key; its certificate is `certificate`. */
  signer: Signer;
  certificate: X509Certificate;
  /** The CA set served on /cacerts (issuing CA first, then its parents). */
  caCertificates: X509Certificate[];
  store: RegistrarStore;
  profile: LdevidProfileConfig;
  crlLifetimeHours: number;
  /** URI put into every issued LDevID as CRL distribution point (RFC 5280 §4.2.1.13). */
  crlDistributionUrl?: string;
  /**
   * Called with the pledge record before a re-enrollment is issued; throws to refuse (the
   * audit-log policy blocks a pledge with a standing violation).
   */
  reenrollGuard?: (pledge: PledgeRecord | undefined) => void;
  now?: () => Date;
}

/** Identity of a renewal: the subject and SAN extension of the certificate being renewed. */
interface FixedIdentity { subject: DistinguishedName; san?: ExtensionInput }

const CURVE_NAME: Record<'P-256' | 'P-384', string> = { 'P-256': 'prime256v1', 'P-384': 'secp384r1' };

function curveOf(key: KeyObject): string | undefined {
  return key.asymmetricKeyType === 'ec' ? key.asymmetricKeyDetails?.namedCurve : undefined;
}

export class DomainCa {
  readonly #o: DomainCaOptions;
  readonly #now: () => Date;
  readonly #crlDp: ExtensionInput | undefined;

  constructor(o: DomainCaOptions) {
    this.#o = o;
    this.#now = o.now ?? (() => new Date());
    this.#crlDp = o.crlDistributionUrl ? crlDistributionPointExtension(o.crlDistributionUrl) : undefined;
  }

  get certificate(): X509Certificate { return this.#o.certificate; }
  cacerts(): X509Certificate[] { return this.#o.caCertificates; }

  /** What we demand in CSRs (RFC 7030 §4.5, RFC 9908): an EC key on the configured curve. */
  csrAttrs(): Uint8Array {
    return encodeCsrAttrs([csrAttr.ecKey(this.#o.profile.keyCurve)]);
  }

  async #serial(): Promise<Uint8Array> {
    const counter = await this.#o.store.nextCertificateSerial();
    const out = new Uint8Array(16);
    out.set(randomBytes(8), 0);
    out[0] = (out[0]! & 0x7f) || 0x01; // positive, and exactly 16 octets in DER
    new DataView(out.buffer).setBigUint64(8, counter);
    return out;
  }

  /** Checks a CSR: proof of possession, key curve, and a key other than the device's `forbiddenKeys`. */
  checkCsr(csrDer: Uint8Array, forbiddenKeys: readonly (X509Certificate | KeyObject)[]): KeyObject {
    return this.#checkCsr(csrDer, forbiddenKeys).publicKey;
  }

  #checkCsr(csrDer: Uint8Array, forbiddenKeys: readonly (X509Certificate | KeyObject)[]): ParsedCsr {
    const csr = verifyCsr(csrDer);
    const curve = curveOf(csr.publicKey);
    if (curve !== CURVE_NAME[this.#o.profile.keyCurve]) {
      throw new BrskiError('bad-csr', `CSR key must be EC ${this.#o.profile.keyCurve} (as announced in csrattrs), got ${curve ?? csr.publicKey.asymmetricKeyType}`);
    }
    const spki = Buffer.from(csr.spkiDer);
    for (const k of forbiddenKeys) {
      if (spki.equals(Buffer.from(spkiDer(k)))) throw new BrskiError('bad-csr', 'CSR key is the IDevID key; the LDevID needs a new key');
    }
    return csr;
  }

  /**
   * Issues and records an LDevID. Initial enrollment: identity from the profile (the CSR's subject
   * is not trusted); renewal: `fixed` = the current certificate's identity.
   */
  async #issue(pledgeSerial: string, publicKey: KeyObject, supersedes: string | undefined, fixed?: FixedIdentity): Promise<X509Certificate> {
    const p = this.#o.profile;
    const now = this.#now();
    let subject: DistinguishedName;
    let san: { dns: string[] } | undefined;
    if (fixed) subject = fixed.subject;
    else {
      const dn: Array<[string, string]> = [['CN', p.subjectCn.replaceAll('{serial}', pledgeSerial)]];
      if (p.subjectSerialNumber) dn.push(['serialNumber', pledgeSerial]);
      subject = dn;
      san = p.sanDns ? { dns: [p.sanDns.replaceAll('{serial}', pledgeSerial.toLowerCase().replace(/[^a-z0-9-]/g, '-'))] } : undefined;
    }
    const extra = [...(fixed?.san ? [fixed.san] : []), ...(this.#crlDp ? [this.#crlDp] : [])];
    const cert = await issueCertificate({
      ...ldevidProfile({ serialNumber: pledgeSerial, publicKey, lifetimeDays: p.lifetimeDays, subject, ...(san ? { san } : {}) }),
      notBefore: new Date(now.getTime() - 5 * 60_000),
      serialNumber: await this.#serial(),
      ...(extra.length ? { extraExtensions: extra } : {}),
    }, { signer: this.#o.signer, certificate: this.#o.certificate });
    const record: CertificateRecord = {
      serialNumber: cert.serialNumber.toUpperCase(), der: new Uint8Array(cert.raw), pledgeSerial,
      issuedAt: now.toISOString(), notAfter: new Date(cert.validTo).toISOString(), ...(supersedes ? { supersedes } : {}),
    };
    await this.#o.store.recordCertificate(record);
    await this.#o.store.updatePledge(pledgeSerial, { state: 'enrolled', enrolledAt: record.issuedAt, currentCertificate: record.serialNumber },
      { type: supersedes ? 'reenrolled' : 'enrolled', detail: { certificate: record.serialNumber, ...(supersedes ? { supersedes } : {}) } });
    return cert;
  }

  /**
   * Initial enrollment (simpleenroll) for an authenticated pledge. A still-current LDevID from an
   * earlier onboarding is recorded as superseded by the new one.
   */
  async enroll(csrDer: Uint8Array, pledgeSerial: string, idevid: X509Certificate): Promise<X509Certificate> {
    const key = this.checkCsr(csrDer, [idevid]);
    const pledge = await this.#o.store.getPledge(pledgeSerial);
    let supersedes: string | undefined;
    if (pledge?.currentCertificate) {
      const cur = await this.#o.store.getCertificate(pledge.currentCertificate);
      if (cur && !cur.revokedAt && !cur.supersededBy) supersedes = cur.serialNumber;
    }
    return this.#issue(pledgeSerial, key, supersedes);
  }

  /**
   * The TLS client certificate must be a current LDevID of ours: issued by this CA, valid now,
   * known to the store, neither revoked nor superseded.
   */
  async currentRecordFor(client: X509Certificate): Promise<CertificateRecord> {
    try {
      verifyChain(client, [], [this.#o.certificate], this.#now());
    } catch (err) {
      if (err instanceof ChainError) throw new BrskiError('unauthenticated', `client certificate is not a valid LDevID of this domain: ${err.message}`);
      throw err;
    }
    const rec = await this.#o.store.getCertificate(client.serialNumber.toUpperCase());
    if (!rec || !Buffer.from(rec.der).equals(client.raw)) throw new BrskiError('unauthenticated', 'client certificate was not issued by this registrar');
    if (rec.revokedAt) throw new BrskiError('certificate-revoked', `LDevID ${rec.serialNumber} is revoked`);
    if (rec.supersededBy) throw new BrskiError('forbidden', `LDevID ${rec.serialNumber} was superseded by ${rec.supersededBy}`);
    const pledge = await this.#o.store.getPledge(rec.pledgeSerial);
    if (pledge?.state === 'revoked') throw new BrskiError('device-revoked', `device ${rec.pledgeSerial} is revoked`);
    return rec;
  }

  /**
   * simplereenroll: key rotation / renewal authenticated by the current LDevID. The CSR may not ask
   * for another identity (RFC 7030 §4.2.2; 400 bad-csr); the new certificate carries the current
   * one's subject and subjectAltName unchanged, whatever the profile says today.
   */
  async reenroll(csrDer: Uint8Array, client: X509Certificate): Promise<X509Certificate> {
    const rec = await this.currentRecordFor(client);
    if (this.#o.reenrollGuard) this.#o.reenrollGuard(await this.#o.store.getPledge(rec.pledgeSerial));
    // Renewal with the same key is allowed by RFC 7030 §4.2.2; rotation uses a new one.
    const csr = this.#checkCsr(csrDer, []);
    assertReenrollIdentity(csr, client);
    return this.#issue(rec.pledgeSerial, csr.publicKey, rec.serialNumber, currentIdentity(client));
  }

  /** Revokes one certificate; false if unknown or already revoked. Regenerates the CRL. */
  async revoke(serialNumber: string, reason: RevocationReason = 'unspecified'): Promise<boolean> {
    const serial = serialNumber.replace(/[:\s]/g, '').toUpperCase();
    const rec = await this.#o.store.getCertificate(serial);
    if (!rec) return false;
    const done = await this.#o.store.revokeCertificate(serial, reason, this.#now().toISOString());
    if (done) {
      await this.#o.store.updatePledge(rec.pledgeSerial, {}, { type: 'certificate-revoked', detail: { certificate: serial, reason } });
      await this.crl(true);
    }
    return done;
  }

  /** Revokes every certificate of a device and bars it from further vouchers and enrollment. */
  async revokeDevice(pledgeSerial: string, reason: RevocationReason = 'cessationOfOperation'): Promise<string[]> {
    const revoked: string[] = [];
    for (const c of await this.#o.store.listCertificates(pledgeSerial)) {
      if (!c.revokedAt && await this.#o.store.revokeCertificate(c.serialNumber, reason, this.#now().toISOString())) revoked.push(c.serialNumber);
    }
    await this.#o.store.updatePledge(pledgeSerial, { state: 'revoked', currentCertificate: null }, { type: 'device-revoked', detail: { certificates: revoked } });
    if (revoked.length > 0) await this.crl(true);
    return revoked;
  }

  /**
   * The current CRL (DER). Reused while it reflects the latest revocation version and is in the
   * first half of its lifetime; otherwise a new one with the next CRL number.
   */
  async crl(force = false): Promise<Uint8Array> {
    const store = this.#o.store;
    const now = this.#now();
    const version = await store.revocationVersion();
    const cached = await store.getCrl();
    const lifetimeMs = this.#o.crlLifetimeHours * 3600_000;
    if (!force && cached && cached.version === version && Date.parse(cached.nextUpdate) - now.getTime() > lifetimeMs / 2) return cached.der;
    const crlNumber = await store.nextCrlNumber();
    const revoked = await store.listRevocations();
    const nextUpdate = new Date(now.getTime() + lifetimeMs);
    const der = await createCrl({
      issuer: this.#o.signer, issuerCertificate: this.#o.certificate, thisUpdate: new Date(now.getTime() - 60_000), nextUpdate, crlNumber,
      revoked: revoked.map((r) => ({ serialNumber: r.serialNumber, revokedAt: new Date(r.revokedAt), reason: r.reason })),
    });
    await store.saveCrl({ der, crlNumber: crlNumber.toString(), version, nextUpdate: nextUpdate.toISOString() });
    return der;
  }
}

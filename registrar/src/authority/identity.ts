/**
 * Who is on the other end of the TLS session: the pledge's IDevID, validated against the
 * configured manufacturer anchors (pledges arrive from many manufacturers, so TLS itself does
 * not verify the client; digest §2.1 c, §8.3). Also the registrar's own identity as the pledge
 * saw it, for the proximity check.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import { BrskiError, ChainError } from '@brski/shared/errors';
import { verifyChain } from '@brski/shared/pki/chain';
import { idevidIssuerOf, masaBaseUrl, masaUrlOf, serialNumberOf } from '@brski/shared/pki/identity';

export interface Manufacturer {
  name: string;
  idevidAnchors: X509Certificate[];
  /** Override of the IDevID's MASA URL extension (authority or https URL). */
  masaUrl?: string;
  /** PEM anchors for the MASA's TLS certificate (undefined = system roots). */
  masaTlsAnchors?: string[];
  /** Anchors for the voucher signature; empty = voucher signature not checked by us. */
  voucherAnchors: X509Certificate[];
  ignoreIdevidExpiry: boolean;
}

export interface PledgeIdentity {
  idevid: X509Certificate;
  /** IDevID … manufacturer anchor. */
  chain: X509Certificate[];
  /** Certificates the pledge presented in TLS (leaf first). */
  presented: readonly X509Certificate[];
  manufacturer: Manufacturer;
  /** From the IDevID subject serialNumber. */
  serial: string;
  idevidIssuer: Uint8Array;
  /** SHA-256 of the IDevID DER, hex. */
  fingerprint: string;
  /** Time the chain was validated at (now, or inside the IDevID validity under ignoreIdevidExpiry). */
  validatedAt: Date;
}

export function fingerprintOf(cert: X509Certificate): string {
  return createHash('sha256').update(cert.raw).digest('hex');
}

/**
 * Authenticates the TLS client as an IDevID of a configured manufacturer. Throws 401 without a
 * certificate, 403 (untrusted-chain / certificate-expired) when no manufacturer anchor validates it.
 */
export function identifyPledge(presented: readonly X509Certificate[], manufacturers: readonly Manufacturer[], at: Date): PledgeIdentity {
  const idevid = presented[0];
  if (!idevid) throw new BrskiError('unauthenticated', 'a TLS client certificate (IDevID) is required');
  let lastError: unknown;
  for (const m of manufacturers) {
    try {
      let chain: X509Certificate[];
      let validatedAt = at;
      try {
        chain = verifyChain(idevid, presented.slice(1), m.idevidAnchors, at);
      } catch (err) {
        // 802.1AR devices may carry real expiry dates long past (digest §8.3): per-manufacturer opt-out,
        // validating at a time inside the IDevID's validity instead.
        if (!(err instanceof ChainError && err.code === 'certificate-expired' && m.ignoreIdevidExpiry)) throw err;
        validatedAt = new Date(Date.parse(idevid.validTo) - 1000);
        chain = verifyChain(idevid, presented.slice(1), m.idevidAnchors, validatedAt);
      }
      const serial = serialNumberOf(idevid);
      if (!serial) throw new BrskiError('serial-mismatch', 'IDevID subject carries no serialNumber attribute');
      return { idevid, chain, presented, manufacturer: m, serial, idevidIssuer: idevidIssuerOf(idevid), fingerprint: fingerprintOf(idevid), validatedAt };
    } catch (err) {
      if (err instanceof BrskiError && err.code === 'serial-mismatch') throw err;
      lastError = err;
    }
  }
  if (lastError instanceof ChainError && lastError.code === 'certificate-expired') throw lastError;
  throw new ChainError('untrusted-chain', `client certificate ${idevid.subject.replace(/\n/g, ', ')} does not chain to a trusted manufacturer`,
    { cause: lastError });
}

/** MASA base URL for a pledge: manufacturer override, else the IDevID extension (digest §8.2). */
export function masaBaseFor(identity: PledgeIdentity): string {
  const raw = identity.manufacturer.masaUrl ?? masaUrlOf(identity.idevid);
  if (!raw) throw new BrskiError('not-authorized', `IDevID of ${identity.serial} names no MASA and manufacturer ${identity.manufacturer.name} configures none`);
  return masaBaseUrl(raw);
}

/** What the registrar presents in TLS, for the proximity check (digest §2.1 c.3). */
export interface RegistrarIdentity {
  /** Our TLS end-entity certificate(s) (several during a rotation). */
  tlsCertificates: X509Certificate[];
  /** Certificates a voucher may pin: our TLS chain and the domain CA chain. */
  pinnable: X509Certificate[];
}

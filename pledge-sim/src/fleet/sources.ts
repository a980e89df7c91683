/**
 * Where a fleet's pledges come from: a PKI directory written by `brski pki init` (manifest.json,
 * IDevID keys injected into emulated SEs), or a factory station that manufactures new ones
 * through the MASA factory endpoint. Both also give the pledges' manufacturer trust.
 */
import { createPrivateKey, type X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import { SecureElement } from '../se/secure-element.ts';
import type { FactoryStation } from '../factory/station.ts';

/** The parts of the `brski pki init` manifest the simulator reads (see cli/lib/pki-init.ts). */
export interface PkiManifestLike {
  dir: string;
  manufacturerCa: { cert: string };
  idevidCa: { cert: string };
  masaSigner: { cert: string };
  station?: { cert: string; key: string };
  pledges: Array<{ serial: string; cert: string; key: string }>;
}

export interface PledgeSource {
  /** Manufacturer anchor(s) plus the MASA signing certificate (COSE vouchers carry no chain). */
  trust: X509Certificate[];
  /** Number of pledges available (Infinity for a factory). */
  available: number;
  secureElement(index: number): Promise<SecureElement>;
}

const pem = (path: string): X509Certificate[] => parseCertificatesPem(readFileSync(path, 'utf8'));

export function readManifest(dirOrFile: string): PkiManifestLike {
  const file = dirOrFile.endsWith('.json') ? dirOrFile : join(dirOrFile, 'manifest.json');
  return JSON.parse(readFileSync(file, 'utf8')) as PkiManifestLike;
}

/**
 * The pledge's voucher trust anchor as the factory installs it: the MASA signing certificate only
 * (digest §8.6: pre-stored, used for nothing but vouchers). Not the manufacturer root: it also issues
 * the IDevID CA, the MASA TLS and station certificates, so any of those keys, e.g. another device's
 * IDevID, could otherwise sign a voucher the pledge accepts.
 */
export function manufacturerTrust(m: PkiManifestLike): X509Certificate[] {
  return pem(m.masaSigner.cert);
}

/** Pledges of a PKI directory; the IDevID key is injected into each SE (factory key injection). */
export function manifestSource(m: PkiManifestLike): PledgeSource {
  const idevidCa = pem(m.idevidCa.cert);
  return {
    trust: manufacturerTrust(m),
    available: m.pledges.length,
    async secureElement(index) {
      const p = m.pledges[index];
      if (!p) throw new RangeError(`the PKI directory has ${m.pledges.length} pledges; pledge ${index + 1} requested`);
      const se = new SecureElement({ label: p.serial });
      const h = se.injectIdevidKey(createPrivateKey(readFileSync(p.key)), 'key injection from PKI directory');
      se.installCertificate(h, [...pem(p.cert), ...idevidCa], 'IDevID from PKI directory');
      return se;
    },
  };
}

/** New pledges from a factory station; serials `<prefix>-<run>-<n>` so reruns never collide. */
export function factorySource(station: FactoryStation, trust: X509Certificate[], prefix = 'FAB'): PledgeSource {
  const run = Date.now().toString(36).toUpperCase();
  return {
    trust, available: Infinity,
    secureElement: (index) => station.manufacture(`${prefix}-${run}-${String(index + 1).padStart(6, '0')}`),
  };
}

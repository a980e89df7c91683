/**
 * A small PKI for pledge tests: manufacturer (root → IDevID CA, MASA signer), two owner domains
 * (domain CA → registrar), and manufactured secure elements.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { issueCertificate } from '@brski/shared/pki/certificate';
import { generateKeyPair } from '@brski/shared/pki/keys';
import {
  idevidProfile, intermediateCaProfile, ldevidProfile, masaSignerProfile, registrarProfile, rootCaProfile,
} from '@brski/shared/pki/profiles';
import { SecureElement } from '../../src/se/secure-element.ts';

export interface Domain { ca: X509Certificate; caSigner: SoftwareSigner; registrar: X509Certificate; registrarKey: KeyObject }
export interface Manufacturer { root: X509Certificate; idevidCa: X509Certificate; idevidCaSigner: SoftwareSigner; masa: SoftwareSigner }

async function ca(name: string, parent?: { signer: SoftwareSigner; certificate: X509Certificate }) {
  const kp = generateKeyPair('P-256');
  const signer = new SoftwareSigner(kp.privateKey);
  const cert = parent
    ? await issueCertificate(intermediateCaProfile({ subject: [['CN', name]], publicKey: kp.publicKey }), parent)
    : await issueCertificate(rootCaProfile({ subject: [['CN', name]], publicKey: kp.publicKey }), { signer });
  return { cert, signer: signer.withCertificates([cert]) };
}

export async function createManufacturer(name = 'Acme'): Promise<Manufacturer> {
  const root = await ca(`${name} Root CA`);
  const idevidCa = await ca(`${name} IDevID CA`, { signer: root.signer, certificate: root.cert });
  const mk = generateKeyPair('P-256');
  const masaCert = await issueCertificate(masaSignerProfile({ subject: [['CN', `${name} MASA`]], publicKey: mk.publicKey }),
    { signer: root.signer, certificate: root.cert });
  return { root: root.cert, idevidCa: idevidCa.cert, idevidCaSigner: idevidCa.signer, masa: new SoftwareSigner(mk.privateKey, [masaCert, root.cert]) };
}

export async function createDomain(name: string): Promise<Domain> {
  const d = await ca(`${name} Domain CA`);
  const rk = generateKeyPair('P-256');
  const registrar = await issueCertificate(registrarProfile({ subject: [['CN', `${name} Registrar`]], publicKey: rk.publicKey }),
    { signer: d.signer, certificate: d.cert });
  return { ca: d.cert, caSigner: d.signer, registrar, registrarKey: rk.privateKey };
}

/** A manufactured SE: key generated inside, IDevID issued by the manufacturer's IDevID CA. */
export async function manufacturePledge(m: Manufacturer, serial: string, masaUrl = 'masa.example:9443'): Promise<SecureElement> {
  const se = new SecureElement({ label: serial });
  const h = se.generateKey('idevid');
  const idevid = await issueCertificate(idevidProfile(serial, masaUrl, se.getPublicKey(h)), { signer: m.idevidCaSigner, certificate: m.idevidCa });
  se.installCertificate(h, [idevid, m.idevidCa], 'test factory');
  return se;
}

export async function issueLdevid(d: Domain, serial: string, publicKey: KeyObject): Promise<X509Certificate> {
  return issueCertificate(ldevidProfile({ serialNumber: serial, publicKey }), { signer: d.caSigner, certificate: d.ca });
}

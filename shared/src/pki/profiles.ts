/**
 * The certificate profiles of the stack (digest §8): what each certificate must carry so that
 * pledges, registrars, MASAs and openssl accept it. Each helper returns a CertificateProfile for
 * issueCertificate; callers may still adjust fields.
 */
import type { KeyObject } from 'node:crypto';
import type { CertificateProfile } from './certificate.ts';
import type { DistinguishedName, SubjectAltName } from './extensions.ts';
import { OID } from './oids.ts';

const DAY = 86_400_000;
const days = (n: number): Date => new Date(Date.now() + n * DAY);

export interface CommonOptions { subject: DistinguishedName; publicKey: KeyObject; days?: number; notBefore?: Date }

export function rootCaProfile(o: CommonOptions & { pathLength?: number }): CertificateProfile {
  return {
    subject: o.subject, publicKey: o.publicKey, notBefore: o.notBefore, notAfter: days(o.days ?? 20 * 365),
    ca: o.pathLength === undefined ? {} : { pathLength: o.pathLength }, keyUsage: ['keyCertSign', 'cRLSign'],
  };
}

/** Intermediate CA, e.g. the IDevID-issuing CA (pathLength 0: issues end entities only). */
export function intermediateCaProfile(o: CommonOptions & { pathLength?: number }): CertificateProfile {
  return { ...rootCaProfile({ ...o, days: o.days ?? 15 * 365 }), ca: { pathLength: o.pathLength ?? 0 } };
}

/** Domain root CA of an owner (issues the registrar certificate and LDevIDs). */
export const domainCaProfile = rootCaProfile;

/**
 * IEEE 802.1AR IDevID: subject serialNumber (PrintableString) = BRSKI serial-number, MASA URL
 * extension, no expiry by default (802.1AR), and no key-usage restrictions (digest §8.3).
 */
export function idevidProfile(serial: string, masaUrl: string, publicKey: KeyObject,
  o: { subject?: DistinguishedName; notAfter?: Date | 'forever'; notBefore?: Date } = {}): CertificateProfile {
  return {
    subject: [...(o.subject ?? [['CN', `Pledge ${serial}`]]), ['serialNumber', serial]],
    publicKey, notBefore: o.notBefore, notAfter: o.notAfter ?? 'forever', masaUrl,
  };
}

/** Registrar: id-kp-cmcRA + serverAuth + clientAuth (digest §8.5, §11 #20), SAN for TLS. */
export function registrarProfile(o: CommonOptions & { san?: SubjectAltName }): CertificateProfile {
  return {
    subject: o.subject, publicKey: o.publicKey, notBefore: o.notBefore, notAfter: days(o.days ?? 2 * 365),
    keyUsage: ['digitalSignature'], extendedKeyUsage: [OID.cmcRA, OID.serverAuth, OID.clientAuth],
    subjectAltName: o.san ?? { dns: ['localhost'], ip: ['127.0.0.1', '::1'] },
  };
}

/** MASA voucher signer: a signing-only end entity. */
export function masaSignerProfile(o: CommonOptions): CertificateProfile {
  return { subject: o.subject, publicKey: o.publicKey, notBefore: o.notBefore, notAfter: days(o.days ?? 5 * 365), keyUsage: ['digitalSignature'] };
}

/** TLS server (MASA HTTPS): serverAuth, SAN localhost + loopback addresses unless given. */
export function tlsServerProfile(o: CommonOptions & { san?: SubjectAltName; clientAuth?: boolean }): CertificateProfile {
  return {
    subject: o.subject, publicKey: o.publicKey, notBefore: o.notBefore, notAfter: days(o.days ?? 2 * 365),
    keyUsage: ['digitalSignature'], extendedKeyUsage: o.clientAuth ? [OID.serverAuth, OID.clientAuth] : [OID.serverAuth],
    subjectAltName: o.san ?? { dns: ['localhost'], ip: ['127.0.0.1', '::1'] },
  };
}

/** TLS client certificate (factory stations, registrar→MASA client identity). */
export function stationProfile(o: CommonOptions): CertificateProfile {
  return {
    subject: o.subject, publicKey: o.publicKey, notBefore: o.notBefore, notAfter: days(o.days ?? 2 * 365),
    keyUsage: ['digitalSignature'], extendedKeyUsage: [OID.clientAuth],
  };
}

/**
 * LDevID issued by the domain CA: subject from the pledge serial unless given, configurable
 * lifetime, optional SAN (e.g. the ACP node name requested via csrattrs), TLS client + server use.
 */
export function ldevidProfile(o: {
  serialNumber: string; publicKey: KeyObject; lifetimeDays?: number; notAfter?: Date; notBefore?: Date;
  subject?: DistinguishedName; san?: SubjectAltName; extendedKeyUsage?: readonly string[];
}): CertificateProfile {
  return {
    subject: o.subject ?? [['CN', o.serialNumber], ['serialNumber', o.serialNumber]],
    publicKey: o.publicKey, notBefore: o.notBefore, notAfter: o.notAfter ?? days(o.lifetimeDays ?? 365),
    keyUsage: ['digitalSignature'], extendedKeyUsage: o.extendedKeyUsage ?? [OID.clientAuth, OID.serverAuth],
    subjectAltName: o.san,
  };
}

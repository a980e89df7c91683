/**
 * A complete throw-away PKI for MASA tests, built with the shared PKI toolkit: manufacturer CA
 * (issues the MASA TLS + voucher-signing certificates and IDevIDs), two owner domains (domain CA
 * + registrar each), a factory station CA (with a valid and an expired station), a test station
 * CA, and helpers to make pledges and build PVRs/RVRs in every format.
 */
import type { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { signEnvelope } from '@brski/shared/envelope/index';
import type { VoucherFormat } from '@brski/shared/media';
import {
  idevidProfile, issueCertificate, masaSignerProfile, registrarProfile, rootCaProfile, stationProfile, tlsServerProfile,
} from '@brski/shared/pki/certificate';
import { idevidIssuerOf, spkiDer, spkiSha256 } from '@brski/shared/pki/identity';
import { certificatesToPem, generateKeyPair, privateKeyToPem } from '@brski/shared/pki/keys';
import { encodeVoucherCbor } from '@brski/shared/voucher/cbor';
import { encodeVoucherJson } from '@brski/shared/voucher/json';
import type { VoucherRequest } from '@brski/shared/voucher/model';

export interface Party { signer: SoftwareSigner; cert: X509Certificate; keyPem: string }

export async function root(cn: string): Promise<Party> {
  const kp = generateKeyPair('P-256');
  const signer = new SoftwareSigner(kp.privateKey);
  const cert = await issueCertificate(rootCaProfile({ subject: [['CN', cn]], publicKey: kp.publicKey }), { signer });
  return { signer: signer.withCertificates([cert]), cert, keyPem: privateKeyToPem(kp.privateKey) };
}

export async function leaf(issuer: Party, make: (pub: import('node:crypto').KeyObject) => Parameters<typeof issueCertificate>[0],
  chainUp: X509Certificate[] = [issuer.cert]): Promise<Party> {
  const kp = generateKeyPair('P-256');
  const cert = await issueCertificate(make(kp.publicKey), { signer: issuer.signer, certificate: issuer.cert });
  return { signer: new SoftwareSigner(kp.privateKey, [cert, ...chainUp]), cert, keyPem: privateKeyToPem(kp.privateKey) };
}

export interface Domain { ca: Party; registrar: Party }

export async function makeDomain(name: string): Promise<Domain> {
  const ca = await root(`${name} Domain CA`);
  const registrar = await leaf(ca, (publicKey) => registrarProfile({ subject: [['CN', `${name} registrar`]], publicKey }));
  return { ca, registrar };
}

export interface TestPki {
  vendor: Party; masaSigner: Party; masaTls: Party;
  domainA: Domain; domainB: Domain;
  stationCa: Party; station: Party; expiredStation: Party; testStationCa: Party; testStation: Party;
  masaUrl: string;
}

export async function makePki(): Promise<TestPki> {
  const vendor = await root('Vendor Manufacturer CA');
  const masaSigner = await leaf(vendor, (publicKey) => masaSignerProfile({ subject: [['CN', 'MASA voucher signer']], publicKey }));
  const masaTls = await leaf(vendor, (publicKey) => tlsServerProfile({ subject: [['CN', 'localhost']], publicKey }));
  const stationCa = await root('Factory Station CA');
  const station = await leaf(stationCa, (publicKey) => stationProfile({ subject: [['CN', 'station-1']], publicKey }));
  const expiredStation = await leaf(stationCa, (publicKey) => ({
    ...stationProfile({ subject: [['CN', 'station-old']], publicKey }),
    notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) }));
  const testStationCa = await root('TEST Station CA');
  const testStation = await leaf(testStationCa, (publicKey) => stationProfile({ subject: [['CN', 'test-station']], publicKey }));
  return { vendor, masaSigner, masaTls, domainA: await makeDomain('A'), domainB: await makeDomain('B'),
    stationCa, station, expiredStation, testStationCa, testStation, masaUrl: 'localhost:9443' };
}

let serialCounter = 0;
export function newSerial(): string { return `JADA-${process.pid}-${Date.now().toString(36)}-${++serialCounter}`; }

export interface Pledge { serial: string; idevid: Party }

export async function makePledge(pki: TestPki, serial = newSerial()): Promise<Pledge> {
  const idevid = await leaf(pki.vendor, (publicKey) => idevidProfile(serial, pki.masaUrl, publicKey));
  return { serial, idevid };
}

/** Writes the PEM files a masa.yaml refers to; returns a raw config object (paths relative to dir). */
export function writeMasaFiles(pki: TestPki, dir: string): Record<string, unknown> {
  const w = (name: string, text: string): string => { writeFileSync(join(dir, name), text); return name; };
  return {
    mode: 'production',
    listen: { host: '127.0.0.1', port: 0 },
    tls: { certFile: w('tls.pem', certificatesToPem([pki.masaTls.cert])), keyFile: w('tls.key', pki.masaTls.keyPem),
      chainFiles: [w('vendor.pem', certificatesToPem([pki.vendor.cert]))] },
    signer: { certFile: w('signer.pem', certificatesToPem([pki.masaSigner.cert])), keyFile: w('signer.key', pki.masaSigner.keyPem),
      chainFiles: ['vendor.pem'] },
    idevid: { anchorFiles: ['vendor.pem'], caCertFile: 'vendor.pem', caKeyFile: w('vendor.key', pki.vendor.keyPem) },
    masaUrl: pki.masaUrl,
    factory: { stationAnchorFiles: [w('station-ca.pem', certificatesToPem([pki.stationCa.cert]))],
      testAnchorFiles: [w('test-station-ca.pem', certificatesToPem([pki.testStationCa.cert]))], rateLimit: { max: 1000, windowSeconds: 60 },
      stations: { 'station-limited': { rateLimit: { max: 2, windowSeconds: 3600 } } } },
    admin: { host: '127.0.0.1', port: 0, token: 'admin-token-0123456789-0123456789-abcdef' },
    ownership: { defaultPolicy: 'first-use' },
    log: { level: 'silent' },
  };
}

// ---- voucher-requests ----------------------------------------------------------------------------

export function payload(format: VoucherFormat, data: VoucherRequest, nonceText?: string): Uint8Array {
  return format === 'cose' ? encodeVoucherCbor('voucher-request', data)
    : encodeVoucherJson('voucher-request', data, nonceText === undefined ? {} : { nonceText });
}

export interface PvrOptions {
  nonce?: Uint8Array; proximityCert?: X509Certificate; serial?: string; tamper?: boolean;
  /** Which proximity leaf names the registrar: the certificate (default) or, as a cBRSKI RPK pledge does, its key. */
  proximity?: 'cert' | 'pubk' | 'pubk-sha256';
  /** CMS without `certificates`, JWS without `x5c` (both optional, digest §6.1). */
  bare?: boolean;
}

export async function buildPvr(format: VoucherFormat, pledge: Pledge, registrar: Party, o: PvrOptions = {}): Promise<{ bytes: Uint8Array; nonce: Uint8Array }> {
  const nonce = o.nonce ?? crypto.getRandomValues(new Uint8Array(16));
  const seen = o.proximityCert ?? registrar.cert;
  const data: VoucherRequest = { assertion: 'proximity', nonce, serialNumber: o.serial ?? pledge.serial, createdOn: new Date().toISOString() };
  if (o.proximity === 'pubk') data.proximityRegistrarPubk = new Uint8Array(spkiDer(seen));
  else if (o.proximity === 'pubk-sha256') data.proximityRegistrarPubkSha256 = new Uint8Array(spkiSha256(seen));
  else data.proximityRegistrarCert = new Uint8Array(seen.raw);
  // COSE PVRs carry no certificates (the signer is the DTLS client certificate).
  const signer = format === 'cose' || (o.bare && format === 'jws') ? pledge.idevid.signer.withCertificates([]) : pledge.idevid.signer;
  let bytes = await signEnvelope(format, payload(format, data), signer,
    format !== 'cms' ? {} : o.bare ? { omitCertificates: true } : { includeCertificates: [pledge.idevid.cert] });
  if (o.tamper) bytes = tamperSignedPayload(format, bytes);
  return { bytes, nonce };
}

export interface RvrOptions {
  nonce?: Uint8Array | null; serial?: string; idevidIssuer?: Uint8Array; pvr?: Uint8Array | null; signer?: Party; domain?: Domain;
  /** RVR created-on; null leaves it out (RFC 8995 registrars may). Default: now. */
  createdOn?: string | null;
  /** CMS without `certificates`, JWS without `x5c`: the MASA has only the TLS chain. */
  bare?: boolean;
}

export async function buildRvr(format: VoucherFormat, pledge: Pledge, domain: Domain, pvr: { bytes: Uint8Array; nonce: Uint8Array } | null,
  o: RvrOptions = {}): Promise<Uint8Array> {
  const data: VoucherRequest = { assertion: 'proximity', serialNumber: o.serial ?? pledge.serial,
    idevidIssuer: o.idevidIssuer ?? idevidIssuerOf(pledge.idevid.cert) };
  if (o.createdOn !== null) data.createdOn = o.createdOn ?? new Date().toISOString();
  const nonce = o.nonce === undefined ? pvr?.nonce : o.nonce ?? undefined;
  if (nonce) data.nonce = nonce;
  if (pvr) data.priorSignedVoucherRequest = pvr.bytes;
  const signer = o.signer ?? domain.registrar;
  const chain = [signer.cert, domain.ca.cert];
  if (format === 'cose') {
    return signEnvelope('cose', payload('cose', data), signer.signer, { unprotectedX5bag: [...chain, pledge.idevid.cert] });
  }
  if (o.bare) {
    return signEnvelope(format, payload(format, data), signer.signer.withCertificates(format === 'jws' ? [] : chain), format === 'cms' ? { omitCertificates: true } : {});
  }
  return signEnvelope(format, payload(format, data), signer.signer.withCertificates(chain));
}

/** Flips a byte inside the signed content of an envelope (still parses, signature fails). */
export function tamperSignedPayload(format: VoucherFormat, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes);
  if (format === 'jws') {
    const obj = JSON.parse(Buffer.from(out).toString('utf8')) as { payload: string };
    const p = Buffer.from(obj.payload, 'base64url').toString('utf8').replace('proximity', 'proximitX');
    obj.payload = Buffer.from(p).toString('base64url');
    return new Uint8Array(Buffer.from(JSON.stringify(obj)));
  }
  // CMS: the signed JSON precedes the certificates, so the first serial text is the signed one.
  // COSE: the unprotected x5bag (IDevID subject!) precedes the payload, so take the last one.
  const hay = Buffer.from(out);
  const i = format === 'cose' ? hay.lastIndexOf('JADA') : hay.indexOf('JADA');
  if (i < 0) throw new Error('no serial in envelope to tamper with');
  out[i] = 'K'.charCodeAt(0);
  return out;
}

/**
 * `brski hsm pki-init`: the lab PKI of `brski pki init`, but every CA and voucher-signing key is
 * generated INSIDE the PKCS#11 token and every certificate is signed there. TLS and pledge keys
 * stay software keys (Node's TLS stack cannot use a PKCS#11 key; pledge keys belong to devices).
 * The service configs reference the token keys by pkcs11: URI and name the PIN source, never the PIN.
 * (No `register` export: brski.ts imports every file here and only calls register where present.)
 */
import { randomBytes, type KeyObject, type X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { SignerConfig } from '../../shared/src/crypto/key-loader.ts';
import { generateEcKeyPair, type GeneratedKey } from '../../shared/src/crypto/pkcs11/admin.ts';
import { HsmError } from '../../shared/src/crypto/pkcs11/errors.ts';
import type { Pkcs11Module } from '../../shared/src/crypto/pkcs11/module.ts';
import { resolvePin } from '../../shared/src/crypto/pkcs11/pin.ts';
import { openPkcs11Signer, type Pkcs11Signer } from '../../shared/src/crypto/pkcs11/pkcs11-signer.ts';
import {
  certificateToPem, generateKeyPair, idevidIssuerOf, idevidProfile, intermediateCaProfile, issueCertificate, masaSignerProfile,
  privateKeyToPem, registrarProfile, rootCaProfile, stationProfile, tlsServerProfile,
} from '../../shared/src/pki/index.ts';
import { masaConfigDocument, registrarConfigDocument } from '../lib/pki-config.ts';

export interface HsmPkiOptions {
  modulePath: string;
  token: string;
  out: string;
  curve: 'P-256' | 'P-384';
  devices: number;
  masaUrl: string;
  keyPrefix: string;
  force: boolean;
  pinSource: { pinFile: string } | { pinEnv: string };
}

export interface HsmKeyEntry { uri: string; certFile: string; chainFiles: string[] }

export interface HsmPkiResult {
  dir: string;
  keys: { manufacturerRoot: HsmKeyEntry; idevidCa: HsmKeyEntry; masaSigner: HsmKeyEntry; domainCa: HsmKeyEntry };
  masaConfig: string;
  registrarConfig: string;
  summary: string;
}

function writeSecret(path: string, data: string): void {
  writeFileSync(path, data, { mode: 0o600 });
  chmodSync(path, 0o600);
}

export async function hsmPkiInit(m: Pkcs11Module, o: HsmPkiOptions): Promise<HsmPkiResult> {
  const dir = resolve(o.out);
  if (existsSync(dir) && readdirSync(dir).length > 0 && !o.force) throw new Error(`${dir} is not empty (use --force)`);
  mkdirSync(join(dir, 'pledges'), { recursive: true });
  const token = m.findToken({ token: o.token, vendor: {} });
  // Configs name the PIN source; an absolute pinFile keeps working wherever the config is loaded from.
  const source = 'pinFile' in o.pinSource ? { pinFile: resolve(o.pinSource.pinFile) } : { pinEnv: o.pinSource.pinEnv };
  const pin = resolvePin(source);
  if (pin === undefined) throw new HsmError('pin-missing', 'no PIN');

  // 1. Keys inside the token. A label already in use is refused by generateEcKeyPair (no overwrite).
  const gen = (name: string, curve: 'P-256' | 'P-384'): GeneratedKey => generateEcKeyPair(m, token, pin, { label: `${o.keyPrefix}${name}`, curve });
  const k = {
    root: gen('manufacturer-root', 'P-384'),
    idevidCa: gen('idevid-ca', o.curve),
    masa: gen('masa-voucher', o.curve),
    domain: gen('domain-ca', o.curve),
  };
  const open = (key: GeneratedKey): Promise<Pkcs11Signer> => openPkcs11Signer({ uri: key.uri, module: m.path, pin });
  const [root, idevidCa, masa, domain] = await Promise.all([open(k.root), open(k.idevidCa), open(k.masa), open(k.domain)]);

  // 2. Certificates, every signature made by the token.
  const mfr = [['O', 'PSIM Manufacturing']] as Array<[string, string]>;
  const rootCert = await issueCertificate(rootCaProfile({ subject: [...mfr, ['CN', 'PSIM Manufacturer Root CA (HSM)']], publicKey: root.publicKey }), { signer: root });
  const byRoot = { signer: root, certificate: rootCert };
  const idevidCaCert = await issueCertificate(intermediateCaProfile({ subject: [...mfr, ['CN', 'PSIM IDevID CA (HSM)']], publicKey: idevidCa.publicKey }), byRoot);
  const masaCert = await issueCertificate(masaSignerProfile({ subject: [...mfr, ['CN', 'PSIM MASA Voucher Signer (HSM)']], publicKey: masa.publicKey }), byRoot);
  const domainCert = await issueCertificate(rootCaProfile({ subject: [['O', 'Example Owner'], ['CN', 'Example Domain CA (HSM)']], publicKey: domain.publicKey, days: 10 * 365 }), { signer: domain });

  const f = (name: string): string => join(dir, name);
  const saveCert = (name: string, cert: X509Certificate): string => { writeFileSync(f(name), certificateToPem(cert)); return name; };
  const saveSoft = (name: string, cert: X509Certificate, key: KeyObject): void => {
    saveCert(`${name}.pem`, cert);
    writeSecret(f(`${name}.key`), privateKeyToPem(key));
  };
  saveCert('manufacturer-ca.pem', rootCert);
  saveCert('idevid-ca.pem', idevidCaCert);
  saveCert('masa-signer.pem', masaCert);
  saveCert('domain-ca.pem', domainCert);

  // Software TLS / station keys, certified by the HSM CAs.
  const tk = generateKeyPair(o.curve);
  saveSoft('masa-tls', await issueCertificate(tlsServerProfile({ subject: [...mfr, ['CN', 'localhost']], publicKey: tk.publicKey }), byRoot), tk.privateKey);
  const sk = generateKeyPair(o.curve);
  saveSoft('station', await issueCertificate(stationProfile({ subject: [...mfr, ['OU', 'Factory'], ['CN', 'Station 1']], publicKey: sk.publicKey }), byRoot), sk.privateKey);
  const rk = generateKeyPair(o.curve);
  saveSoft('registrar', await issueCertificate(registrarProfile({ subject: [['O', 'Example Owner'], ['CN', 'Example Registrar']], publicKey: rk.publicKey }),
    { signer: domain, certificate: domainCert }), rk.privateKey);

  // Pledge IDevIDs from the HSM IDevID CA.
  const devices: Array<{ serial: string; idevidIssuer: string; cert: string }> = [];
  for (let i = 1; i <= o.devices; i++) {
    const serial = `PSIM-HSM-${String(i).padStart(6, '0')}`;
    const pk = generateKeyPair(o.curve);
    const cert = await issueCertificate(idevidProfile(serial, o.masaUrl, pk.publicKey, { subject: [...mfr, ['CN', `PSIM Pledge ${serial}`]] }),
      { signer: idevidCa, certificate: idevidCaCert });
    writeFileSync(f(`pledges/${serial}.pem`), `${certificateToPem(cert)}${certificateToPem(idevidCaCert)}`);
    writeSecret(f(`pledges/${serial}.key`), privateKeyToPem(pk.privateKey));
    devices.push({ serial, idevidIssuer: Buffer.from(idevidIssuerOf(cert)).toString('hex'), cert: `pledges/${serial}.pem` });
  }
  writeFileSync(f('devices.json'), `${JSON.stringify(devices, null, 1)}\n`);

  // 3. Configs referencing the token keys.
  const ref = (key: GeneratedKey, certFile: string, chainFiles: string[]): SignerConfig =>
    ({ certFile, chainFiles, pkcs11Uri: key.uri, module: m.path, ...source });
  const keys = {
    manufacturerRoot: { uri: k.root.uri, certFile: 'manufacturer-ca.pem', chainFiles: [] },
    idevidCa: { uri: k.idevidCa.uri, certFile: 'idevid-ca.pem', chainFiles: ['manufacturer-ca.pem'] },
    masaSigner: { uri: k.masa.uri, certFile: 'masa-signer.pem', chainFiles: [] },
    domainCa: { uri: k.domain.uri, certFile: 'domain-ca.pem', chainFiles: [] },
  };
  const masaDoc = masaConfigDocument({ masaPort: 9443 });
  masaDoc.signer = ref(k.masa, 'masa-signer.pem', []);
  // Factory issuance from the token-held IDevID CA (stations: manufacturer-ca.pem, station.pem).
  masaDoc.idevid = { ...(masaDoc.idevid as Record<string, unknown>), ca: ref(k.idevidCa, 'idevid-ca.pem', ['manufacturer-ca.pem']) };
  const registrarDoc = registrarConfigDocument({ registrarPort: 8443 });
  registrarDoc.ca = ref(k.domain, 'domain-ca.pem', []);
  const header = '# generated by brski hsm pki-init: signing keys live in the PKCS#11 token (docs/hsm.md)\n';
  writeFileSync(f('masa.yaml'), `${header}${stringify(masaDoc)}`);
  writeFileSync(f('registrar.yaml'), `${header}${stringify(registrarDoc)}`);
  writeFileSync(f('hsm-keys.yaml'), `${header}${stringify({
    module: m.path, token: { label: token.label, serial: token.serial }, pinSource: source,
    keys: Object.fromEntries(Object.entries(keys).map(([name, e]) => [name, ref({ uri: e.uri } as GeneratedKey, e.certFile, e.chainFiles)])),
  })}`);
  writeSecret(f('masa-admin.token'), randomBytes(24).toString('base64url'));
  writeSecret(f('registrar-admin.token'), randomBytes(24).toString('base64url'));

  const summary = [
    `PKI written to ${dir}; keys in token '${token.label}' (serial ${token.serial}) via ${m.path}`,
    ...Object.entries(keys).map(([n, e]) => `  ${n.padEnd(17)} ${e.certFile.padEnd(20)} ${e.uri}`),
    `  software keys     masa-tls, registrar, station, ${o.devices} pledge(s)`,
    `  configs           ${f('masa.yaml')}, ${f('registrar.yaml')}, ${f('hsm-keys.yaml')}`,
  ].join('\n');
  return { dir, keys, masaConfig: f('masa.yaml'), registrarConfig: f('registrar.yaml'), summary };
}

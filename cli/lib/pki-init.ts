/**
 * `brski pki init`: a complete demo/lab PKI in one directory — manufacturer root, IDevID-issuing
 * CA, MASA voucher signer and TLS server, factory station, N pledge IDevIDs, owner domain CA and
 * registrar — plus masa.yaml / registrar.yaml that reference those files (layout: docs/design/config.md).
 * Keys are generated with node:crypto and signed with software signers so 1000 pledges take seconds.
 */
import { randomBytes, type KeyObject, type X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { SoftwareSigner } from '../../shared/src/crypto/software-signer.ts';
import {
  certificateToPem, generateKeyPair, idevidIssuerOf, idevidProfile, intermediateCaProfile, issueCertificate, masaSignerProfile,
  privateKeyToPem, registrarProfile, rootCaProfile, stationProfile, tlsServerProfile, type Curve,
} from '../../shared/src/pki/index.ts';
import { masaConfigDocument, registrarConfigDocument } from './pki-config.ts';

export interface PkiInitOptions {
  out: string;
  devices?: number;
  curve?: Curve;
  /** Value of the IDevID MASA URL extension; default `localhost:<masaPort>`. */
  masaUrl?: string;
  registrarPort?: number;
  masaPort?: number;
  /** Serial prefix; serials are `<prefix>-000001` … */
  serialPrefix?: string;
  /** Overwrite an existing, non-empty output directory. */
  force?: boolean;
  /** Called after each pledge (progress bars). */
  onPledge?: (done: number, total: number) => void;
}

export interface CertKeyFiles { cert: string; key: string }

export interface PkiManifest {
  dir: string;
  curve: Curve;
  masaUrl: string;
  manufacturerCa: CertKeyFiles;
  idevidCa: CertKeyFiles;
  masaSigner: CertKeyFiles;
  masaTls: CertKeyFiles;
  domainCa: CertKeyFiles;
  registrar: CertKeyFiles;
  station: CertKeyFiles;
  pledges: Array<{ serial: string; cert: string; key: string }>;
  /** JSON list of {serial, idevidIssuer (hex), cert} for MASA factory seeding. */
  devices: string;
  masaConfig: string;
  registrarConfig: string;
  masaAdminToken: string;
  registrarAdminToken: string;
}

const SECRET_MODE = 0o600;

function writeSecret(path: string, data: string): void {
  writeFileSync(path, data, { mode: SECRET_MODE });
  chmodSync(path, SECRET_MODE); // mode only applies on creation; enforce it when overwriting too
}

function portOf(v: number | undefined, fallback: number, name: string): number {
  const p = v ?? fallback;
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new TypeError(`${name} must be a port number (1-65535)`);
  return p;
}

export async function initDemoPki(opts: PkiInitOptions): Promise<PkiManifest> {
  const dir = resolve(opts.out);
  const n = opts.devices ?? 10;
  if (!Number.isInteger(n) || n < 0 || n > 1_000_000) throw new TypeError('devices must be an integer between 0 and 1000000');
  const curve = opts.curve ?? 'P-256';
  const masaPort = portOf(opts.masaPort, 9443, 'masa port');
  const registrarPort = portOf(opts.registrarPort, 8443, 'registrar port');
  const masaUrl = opts.masaUrl ?? `localhost:${masaPort}`;
  const prefix = opts.serialPrefix ?? 'PSIM';
  if (existsSync(dir) && readdirSync(dir).length > 0 && !opts.force) {
    throw new Error(`${dir} is not empty (refusing to overwrite keys; use --force)`);
  }
  mkdirSync(join(dir, 'pledges'), { recursive: true });

  const f = (name: string): string => join(dir, name);
  const save = (name: string, cert: X509Certificate, key: KeyObject): CertKeyFiles => {
    writeFileSync(f(`${name}.pem`), certificateToPem(cert));
    writeSecret(f(`${name}.key`), privateKeyToPem(key));
    return { cert: f(`${name}.pem`), key: f(`${name}.key`) };
  };
  const keys = () => generateKeyPair(curve);

  // Manufacturer side. The root is the pledges' voucher trust anchor; the MASA signer hangs
  // directly under it so a voucher needs to carry only the signer certificate.
  const mk = generateKeyPair('P-384');
  const mSigner = new SoftwareSigner(mk.privateKey);
  const mRoot = await issueCertificate(rootCaProfile({ subject: [['O', 'PSIM Manufacturing'], ['CN', 'PSIM Manufacturer Root CA']], publicKey: mk.publicKey }), { signer: mSigner });
  const ik = keys();
  const iSigner = new SoftwareSigner(ik.privateKey);
  const iCa = await issueCertificate(intermediateCaProfile({ subject: [['O', 'PSIM Manufacturing'], ['CN', 'PSIM IDevID CA']], publicKey: ik.publicKey }),
    { signer: mSigner, certificate: mRoot });
  const sk = keys();
  const masaSigner = await issueCertificate(masaSignerProfile({ subject: [['O', 'PSIM Manufacturing'], ['CN', 'PSIM MASA Voucher Signer']], publicKey: sk.publicKey }),
    { signer: mSigner, certificate: mRoot });
  const tk = keys();
  const masaHost = masaUrl.includes('/') ? new URL(masaUrl).hostname : masaUrl.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  const san = { dns: [...new Set(['localhost', ...(/^[A-Za-z0-9.-]+$/.test(masaHost) && !/^[\d.]+$/.test(masaHost) ? [masaHost] : [])])], ip: ['127.0.0.1', '::1'] };
  const masaTls = await issueCertificate(tlsServerProfile({ subject: [['O', 'PSIM Manufacturing'], ['CN', masaHost]], publicKey: tk.publicKey, san }),
    { signer: mSigner, certificate: mRoot });
  const stk = keys();
  const station = await issueCertificate(stationProfile({ subject: [['O', 'PSIM Manufacturing'], ['OU', 'Factory'], ['CN', 'Station 1']], publicKey: stk.publicKey }),
    { signer: mSigner, certificate: mRoot });

  // Owner side.
  const dk = keys();
  const dSigner = new SoftwareSigner(dk.privateKey);
  const domainCa = await issueCertificate(rootCaProfile({ subject: [['O', 'Example Owner'], ['CN', 'Example Domain CA']], publicKey: dk.publicKey, days: 10 * 365 }),
    { signer: dSigner });
  const rk = keys();
  const registrar = await issueCertificate(registrarProfile({ subject: [['O', 'Example Owner'], ['CN', 'Example Registrar']], publicKey: rk.publicKey }),
    { signer: dSigner, certificate: domainCa });

  const manifest: PkiManifest = {
    dir, curve, masaUrl,
    manufacturerCa: save('manufacturer-ca', mRoot, mk.privateKey),
    idevidCa: save('idevid-ca', iCa, ik.privateKey),
    masaSigner: save('masa-signer', masaSigner, sk.privateKey),
    masaTls: save('masa-tls', masaTls, tk.privateKey),
    domainCa: save('domain-ca', domainCa, dk.privateKey),
    registrar: save('registrar', registrar, rk.privateKey),
    station: save('station', station, stk.privateKey),
    pledges: [],
    devices: f('devices.json'),
    masaConfig: f('masa.yaml'),
    registrarConfig: f('registrar.yaml'),
    masaAdminToken: f('masa-admin.token'),
    registrarAdminToken: f('registrar-admin.token'),
  };

  const devices: Array<{ serial: string; idevidIssuer: string; cert: string }> = [];
  const width = Math.max(6, String(n).length);
  for (let i = 1; i <= n; i++) {
    const serial = `${prefix}-${String(i).padStart(width, '0')}`;
    const pk = keys();
    const cert = await issueCertificate(idevidProfile(serial, masaUrl, pk.publicKey, { subject: [['O', 'PSIM Manufacturing'], ['CN', `PSIM Pledge ${serial}`]] }),
      { signer: iSigner, certificate: iCa });
    const files = { cert: f(`pledges/${serial}.pem`), key: f(`pledges/${serial}.key`) };
    writeFileSync(files.cert, certificateToPem(cert));
    writeSecret(files.key, privateKeyToPem(pk.privateKey));
    manifest.pledges.push({ serial, ...files });
    devices.push({ serial, idevidIssuer: Buffer.from(idevidIssuerOf(cert)).toString('hex'), cert: `pledges/${serial}.pem` });
    opts.onPledge?.(i, n);
  }
  writeFileSync(manifest.devices, `${JSON.stringify(devices, null, 1)}\n`);

  writeSecret(manifest.masaAdminToken, randomBytes(24).toString('base64url'));
  writeSecret(manifest.registrarAdminToken, randomBytes(24).toString('base64url'));
  writeFileSync(manifest.masaConfig, `# generated by brski pki init; layout: docs/design/config.md\n${stringify(masaConfigDocument({ masaPort }))}`);
  writeFileSync(manifest.registrarConfig,
    `# generated by brski pki init; layout: docs/design/config.md\n${stringify(registrarConfigDocument({ registrarPort }))}`);
  writeFileSync(f('manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

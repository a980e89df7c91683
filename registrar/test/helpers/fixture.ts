/**
 * Test world for the registrar: a demo PKI from `initDemoPki` (manufacturer, MASA, owner
 * domain, pledges), the registrar config it writes (ports and timings adjusted for tests), and
 * extra material for negative tests (a foreign manufacturer, a foreign registrar).
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { loadConfig } from '@brski/shared/config/load';
import {
  generateKeyPair, idevidProfile, issueCertificate, registrarProfile, rootCaProfile,
} from '@brski/shared/pki/index';
import { initDemoPki, type PkiManifest } from '../../../cli/lib/pki-init.ts';
import { freePort } from '../../../test/helpers/ports.ts';
import { makeTempDir } from '../../../test/helpers/tmp.ts';
import { registrarConfigSchema, type RegistrarConfig } from '../../src/config.ts';

export interface TestPledge {
  serial: string;
  cert: X509Certificate;
  key: KeyObject;
  certPem: string;
  keyPem: string;
  signer: SoftwareSigner;
  certFile: string;
  keyFile: string;
}

export interface Fixture {
  manifest: PkiManifest;
  dir: string;
  masaPort: number;
  config: RegistrarConfig;
  adminToken: string;
  pledges: TestPledge[];
  domainCa: X509Certificate;
  registrarCert: X509Certificate;
  pem(file: string): string;
  /** An IDevID of a manufacturer the registrar does not trust. */
  foreignPledge(serial: string): Promise<TestPledge>;
  /** A certificate of another registrar (for proximity mismatch). */
  foreignRegistrarCert(): Promise<X509Certificate>;
}

function pledgeFrom(serial: string, certFile: string, keyFile: string): TestPledge {
  const certPem = readFileSync(certFile, 'utf8');
  const keyPem = readFileSync(keyFile, 'utf8');
  const cert = new X509Certificate(certPem);
  const key = createPrivateKey(keyPem);
  return { serial, cert, key, certPem, keyPem, signer: new SoftwareSigner(key, [cert]), certFile, keyFile };
}

export async function makeFixture(opts: { devices?: number; overrides?: (c: RegistrarConfig) => void } = {}): Promise<Fixture> {
  const tmp = makeTempDir('brski-registrar-test-');
  const masaPort = await freePort();
  const manifest = await initDemoPki({ out: tmp.path, devices: opts.devices ?? 4, masaPort, registrarPort: 18443, force: true });
  const config = loadConfig(manifest.registrarConfig, registrarConfigSchema, { env: {} });
  config.listen.port = 0;
  config.admin.port = 0;
  config.log.level = 'silent';
  config.masa.timeoutMs = 2000;
  config.masa.attempts = 1;
  config.masa.backgroundDelayMs = 50;
  config.masa.retryAfter = 1;
  opts.overrides?.(config);
  const pem = (file: string) => readFileSync(`${tmp.path}/${file}`, 'utf8');
  return {
    manifest, dir: tmp.path, masaPort, config,
    adminToken: readFileSync(manifest.registrarAdminToken, 'utf8').trim(),
    pledges: manifest.pledges.map((p) => pledgeFrom(p.serial, p.cert, p.key)),
    domainCa: new X509Certificate(pem('domain-ca.pem')),
    registrarCert: new X509Certificate(pem('registrar.pem')),
    pem,
    async foreignPledge(serial: string) {
      const rk = generateKeyPair('P-256');
      const rootSigner = new SoftwareSigner(rk.privateKey);
      const root = await issueCertificate(rootCaProfile({ subject: [['CN', 'Rogue Vendor Root']], publicKey: rk.publicKey }), { signer: rootSigner });
      const pk = generateKeyPair('P-256');
      const cert = await issueCertificate(idevidProfile(serial, `localhost:${masaPort}`, pk.publicKey), { signer: rootSigner, certificate: root });
      return { serial, cert, key: pk.privateKey, certPem: cert.toString(), keyPem: pk.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
        signer: new SoftwareSigner(pk.privateKey, [cert]), certFile: '', keyFile: '' };
    },
    async foreignRegistrarCert() {
      const k = generateKeyPair('P-256');
      const s = new SoftwareSigner(k.privateKey);
      const ca = await issueCertificate(rootCaProfile({ subject: [['CN', 'Other Domain CA']], publicKey: k.publicKey }), { signer: s });
      const rk = generateKeyPair('P-256');
      return issueCertificate(registrarProfile({ subject: [['CN', 'Other Registrar']], publicKey: rk.publicKey }), { signer: s, certificate: ca });
    },
  };
}

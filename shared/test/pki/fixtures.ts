/** Test PKI: manufacturer root → IDevID CA → IDevIDs, domain root → registrar; plus an openssl runner. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { X509Certificate } from 'node:crypto';
import { SoftwareSigner } from '../../src/crypto/software-signer.ts';
import {
  certificateToPem, generateKeyPair, idevidProfile, intermediateCaProfile, issueCertificate, registrarProfile, rootCaProfile,
} from '../../src/pki/index.ts';

export const VECTORS = '/work/shared/vectors';

export async function makeTestPki() {
  const rootKey = generateKeyPair('P-384');
  const rootSigner = new SoftwareSigner(rootKey.privateKey);
  const root = await issueCertificate(rootCaProfile({ subject: [['O', 'Test Maker'], ['CN', 'Test Maker Root CA']], publicKey: rootKey.publicKey }), { signer: rootSigner });
  const caKey = generateKeyPair('P-256');
  const caSigner = new SoftwareSigner(caKey.privateKey);
  const idevidCa = await issueCertificate(intermediateCaProfile({ subject: [['O', 'Test Maker'], ['CN', 'Test IDevID CA']], publicKey: caKey.publicKey }), { signer: rootSigner, certificate: root });
  const devKey = generateKeyPair('P-256');
  const idevid = await issueCertificate(idevidProfile('PSIM-000042', 'localhost:8443', devKey.publicKey), { signer: caSigner, certificate: idevidCa });
  const regKey = generateKeyPair('P-256');
  const registrar = await issueCertificate(registrarProfile({ subject: [['CN', 'Test Registrar']], publicKey: regKey.publicKey }), { signer: rootSigner, certificate: root });
  return { rootKey, rootSigner, root, caKey, caSigner, idevidCa, devKey, idevid, regKey, registrar };
}

/**
 * Runs openssl with the given files written to a temp dir; returns stdout followed by stderr
 * (some openssl 3.0 commands report failure only on stderr) and throws on a non-zero exit.
 */
export function openssl(args: (dir: string) => string[], files: Record<string, string | Uint8Array | X509Certificate>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pki-test-'));
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof content === 'string' || content instanceof Uint8Array ? content : certificateToPem(content));
  }
  const r = spawnSync('openssl', args(dir), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args(dir)[0]} exited ${r.status}: ${r.stderr}`);
  return r.stdout + r.stderr;
}

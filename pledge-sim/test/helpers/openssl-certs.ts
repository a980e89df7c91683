/**
 * Test-only certificate issuance through the openssl CLI: issues a certificate for an arbitrary
 * public key (-force_pubkey), which is what SE tests need without depending on the shared PKI.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCa {
  cert: X509Certificate;
  issue(publicKey: KeyObject, cn: string): X509Certificate;
  /** A fresh key + certificate for a test TLS server (PEM key). */
  issueServer(): { key: string; cert: X509Certificate };
  dispose(): void;
}

export function createTestCa(name = 'Test CA'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'se-ca-'));
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caKey = join(dir, 'ca.key');
  const caPem = join(dir, 'ca.pem');
  writeFileSync(caKey, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  execFileSync('openssl', ['req', '-x509', '-new', '-key', caKey, '-subj', `/CN=${name}`, '-days', '2', '-out', caPem], { stdio: 'pipe' });
  let serial = 1;
  return {
    cert: new X509Certificate(readFileSync(caPem)),
    issue(publicKey, cn) {
      const pub = join(dir, `pub${serial}.pem`);
      const csr = join(dir, `d${serial}.csr`);
      const out = join(dir, `c${serial}.pem`);
      writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
      execFileSync('openssl', ['req', '-new', '-key', caKey, '-subj', `/CN=${cn}`, '-out', csr], { stdio: 'pipe' });
      execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', caPem, '-CAkey', caKey, '-force_pubkey', pub,
        '-set_serial', String(++serial), '-days', '1', '-out', out], { stdio: 'pipe' });
      return new X509Certificate(readFileSync(out));
    },
    issueServer() {
      const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      return { key: kp.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, cert: this.issue(kp.publicKey, 'server') };
    },
    dispose() { rmSync(dir, { recursive: true, force: true }); },
  };
}

/**
 * Test PKI built with the openssl CLI (independent of our own pki/ code, which is written in
 * parallel): root CA → intermediate CA → end-entity, P-256 or P-384, valid from now.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SoftwareSigner } from '../../src/crypto/software-signer.ts';

export type Curve = 'P-256' | 'P-384';

export interface Issued {
  key: KeyObject;
  cert: X509Certificate;
  certPath: string;
  keyPath: string;
}

export interface TestPki {
  dir: string;
  root: Issued;
  intermediate: Issued;
  leaf: Issued;
  /** Signer with [leaf, intermediate]. */
  signer: SoftwareSigner;
  /** Signs with `leaf.key` but needs no chain beyond itself. */
  issue(name: string, opts?: IssueOptions): Issued;
  cleanup(): void;
}

export interface IssueOptions {
  issuer?: Issued;
  ca?: boolean;
  days?: number;
  eku?: string;
  curve?: Curve;
  /** Overrides keyUsage (e.g. keyCertSign on a non-CA to test the basicConstraints check). */
  keyUsage?: string;
}

function openssl(args: string[], input?: string): string {
  return execFileSync('openssl', args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

function newKey(dir: string, name: string, curve: Curve): { key: KeyObject; keyPath: string } {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: curve });
  const keyPath = join(dir, `${name}.key`);
  writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  return { key: privateKey, keyPath };
}

export function createTestPki(curve: Curve = 'P-256'): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'brski-envelope-'));
  let serial = 1;

  const issue = (name: string, opts: IssueOptions = {}): Issued => {
    const { key, keyPath } = newKey(dir, name, opts.curve ?? curve);
    const certPath = join(dir, `${name}.crt`);
    const extPath = join(dir, `${name}.ext`);
    const ext = opts.ca
      ? ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']
      : ['basicConstraints=critical,CA:FALSE', `keyUsage=critical,${opts.keyUsage ?? 'digitalSignature'}`];
    ext.push('subjectKeyIdentifier=hash');
    if (opts.issuer) ext.push('authorityKeyIdentifier=keyid');
    if (opts.eku) ext.push(`extendedKeyUsage=${opts.eku}`);
    writeFileSync(extPath, ext.join('\n') + '\n');
    const days = String(opts.days ?? 365);
    const subj = `/CN=${name}`;
    if (!opts.issuer) {
      openssl(['req', '-x509', '-new', '-key', keyPath, '-subj', subj, '-days', days, '-sha256',
        '-set_serial', String(serial++), '-extensions', 'v3', '-config', configFile(dir, ext), '-out', certPath]);
    } else {
      const csrPath = join(dir, `${name}.csr`);
      openssl(['req', '-new', '-key', keyPath, '-subj', subj, '-out', csrPath, '-config', configFile(dir, [])]);
      openssl(['x509', '-req', '-in', csrPath, '-CA', opts.issuer.certPath, '-CAkey', opts.issuer.keyPath,
        '-set_serial', String(serial++), '-days', days, '-sha256', '-extfile', extPath, '-out', certPath]);
    }
    return { key, keyPath, certPath, cert: new X509Certificate(readFileSync(certPath)) };
  };

  const root = issue('Test Root CA', { ca: true, days: 3650 });
  const intermediate = issue('Test Intermediate CA', { ca: true, issuer: root, days: 1825 });
  const leaf = issue('Test Signer', { issuer: intermediate });
  return {
    dir, root, intermediate, leaf, issue,
    signer: new SoftwareSigner(leaf.key, [leaf.cert, intermediate.cert]),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function configFile(dir: string, v3: string[]): string {
  const p = join(dir, `openssl-${v3.length}-${Math.random().toString(36).slice(2)}.cnf`);
  writeFileSync(p, ['[req]', 'distinguished_name=dn', '[dn]', '[v3]', ...v3, ''].join('\n'));
  return p;
}

export function runOpenssl(args: string[]): { ok: boolean; output: string } {
  try {
    return { ok: true, output: openssl(args) };
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string };
    return { ok: false, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

/** A copy of `bytes` with one bit flipped at `index`. */
export function flip(bytes: Uint8Array, index: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[index] = out[index]! ^ 0x01;
  return out;
}

/** Time well after every test certificate's notAfter. */
export const FAR_FUTURE = new Date('2100-01-01T00:00:00Z');

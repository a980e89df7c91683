/** The key loader's software branch and the config schema (the PKCS#11 branch is in pkcs11-*.test.ts). */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, verify } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeKeyRef, isPkcs11Ref, keyRefSchema, loadConfiguredSigner, loadSigner, signerConfigSchema } from '../../src/crypto/key-loader.ts';
import { SoftwareSigner } from '../../src/crypto/software-signer.ts';
import { MalformedError } from '../../src/errors.ts';

describe('loadSigner with PEM files', () => {
  let dir: string;
  let keyPath: string; let certPath: string; let otherCert: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'brski-keyloader-'));
    const mk = (name: string): [string, string] => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
      const k = join(dir, `${name}.key`); const c = join(dir, `${name}.pem`);
      writeFileSync(k, privateKey.export({ format: 'pem', type: 'pkcs8' }));
      execFileSync('openssl', ['req', '-x509', '-new', '-key', k, '-subj', `/CN=${name}`, '-days', '1', '-out', c]);
      return [k, c];
    };
    [keyPath, certPath] = mk('signer');
    otherCert = mk('other')[1];
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loads a PEM key (string or {keyFile}) with its certificate and signs', async () => {
    for (const ref of [keyPath, { keyFile: keyPath }]) {
      const s = await loadSigner(ref, [certPath]);
      expect(s).toBeInstanceOf(SoftwareSigner);
      expect(s.algorithm).toBe('ES384');
      expect(s.certificates[0]!.subject).toBe('CN=signer');
      const sig = await s.sign(Uint8Array.of(1));
      expect(verify('sha384', Uint8Array.of(1), { key: s.certificates[0]!.publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true);
    }
  });

  it('refuses a certificate for another key, and a file without certificates', async () => {
    await expect(loadSigner(keyPath, [otherCert])).rejects.toThrow(MalformedError);
    await expect(loadSigner(keyPath, [keyPath])).rejects.toThrow(/no PEM certificate/);
  });

  it('loadConfiguredSigner takes certFile + chainFiles', async () => {
    const s = await loadConfiguredSigner({ certFile: certPath, chainFiles: [otherCert], keyFile: keyPath });
    expect(s.certificates.map((c) => c.subject)).toEqual(['CN=signer', 'CN=other']);
  });
});

describe('key reference schemas', () => {
  it('accepts the documented shapes', () => {
    expect(keyRefSchema.parse('pkcs11:token=a;object=b')).toBe('pkcs11:token=a;object=b');
    expect(keyRefSchema.parse({ keyFile: '/k.pem' })).toEqual({ keyFile: '/k.pem' });
    expect(signerConfigSchema.parse({ certFile: 'c.pem', pkcs11Uri: 'pkcs11:object=k', module: '/m.so', pinEnv: 'PIN' })).toMatchObject({ pinEnv: 'PIN' });
  });

  it('refuses mixed or ambiguous shapes', () => {
    expect(signerConfigSchema.safeParse({ certFile: 'c.pem', keyFile: 'k.pem', pkcs11Uri: 'pkcs11:object=k' }).success).toBe(false);
    expect(signerConfigSchema.safeParse({ certFile: 'c.pem', pkcs11Uri: 'pkcs11:object=k', pin: '1', pinFile: '/p' }).success).toBe(false);
    expect(signerConfigSchema.safeParse({ certFile: 'c.pem', pkcs11Uri: 'file:/x' }).success).toBe(false);
    expect(signerConfigSchema.safeParse({ pkcs11Uri: 'pkcs11:object=k' }).success).toBe(false); // certificate required
    expect(keyRefSchema.safeParse({ pkcs11Uri: 'pkcs11:object=k', pinn: '1' }).success).toBe(false);
  });

  it('classifies and describes references without PINs', () => {
    expect(isPkcs11Ref('PKCS11:object=k')).toBe(true);
    expect(isPkcs11Ref('/etc/key.pem')).toBe(false);
    expect(describeKeyRef('pkcs11:object=k?pin-value=123456')).toBe('pkcs11:object=k?pin-value=***');
    expect(describeKeyRef({ pkcs11Uri: 'pkcs11:object=k', module: '/m.so', pin: '123456' })).not.toContain('123456');
  });
});

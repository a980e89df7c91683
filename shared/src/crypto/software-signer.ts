/** Signer over a node:crypto private key (PEM files, generated demo keys). */
import { createPrivateKey, createPublicKey, sign as nodeSign, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ALGORITHM_INFO, algorithmForKey, type SignatureAlgorithm, type Signer } from './signer.ts';

export class SoftwareSigner implements Signer {
  readonly algorithm: SignatureAlgorithm;
  readonly publicKey: KeyObject;
  readonly certificates: readonly X509Certificate[];
  readonly #privateKey: KeyObject;

  constructor(privateKey: KeyObject, certificates: readonly X509Certificate[] = []) {
    if (privateKey.type !== 'private') throw new TypeError('SoftwareSigner needs a private key');
    this.#privateKey = privateKey;
    this.algorithm = algorithmForKey(privateKey);
    this.publicKey = createPublicKey(privateKey);
    this.certificates = certificates;
  }

  sign(data: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(this.signSync(data));
  }

  /** Synchronous variant for hot paths that know they hold a software key. */
  signSync(data: Uint8Array): Uint8Array {
    return new Uint8Array(nodeSign(ALGORITHM_INFO[this.algorithm].hash, data, { key: this.#privateKey, dsaEncoding: 'ieee-p1363' }));
  }

  /** Same key, different certificate list (e.g. after the certificate was issued). */
  withCertificates(certificates: readonly X509Certificate[]): SoftwareSigner {
    return new SoftwareSigner(this.#privateKey, certificates);
  }

  // Never let the key leak through JSON.stringify / util.inspect.
  toJSON(): unknown { return { algorithm: this.algorithm, certificates: this.certificates.map((c) => c.subject) }; }
}

/** Splits a PEM bundle into its certificates. */
export function parseCertificatesPem(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

export function loadSoftwareSigner(keyPath: string, certPaths: readonly string[] = []): SoftwareSigner {
  const key = createPrivateKey(readFileSync(keyPath));
  const certs = certPaths.flatMap((p) => parseCertificatesPem(readFileSync(p, 'utf8')));
  return new SoftwareSigner(key, certs);
}

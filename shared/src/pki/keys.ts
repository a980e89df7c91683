/** Key generation and PEM/DER conversions. Keys stay node:crypto KeyObjects; PEM only at the edges. */
import { generateKeyPairSync, type KeyObject, type X509Certificate } from 'node:crypto';
import { MalformedError } from '../errors.ts';

export type Curve = 'P-256' | 'P-384';

export interface KeyPair { privateKey: KeyObject; publicKey: KeyObject }

export function generateKeyPair(curve: Curve = 'P-256'): KeyPair {
  if (curve !== 'P-256' && curve !== 'P-384') throw new TypeError(`unsupported curve ${String(curve)}`);
  return generateKeyPairSync('ec', { namedCurve: curve });
}

/** PKCS#8 PEM (unencrypted: the files are protected by mode 0600 or live in an HSM instead). */
export function privateKeyToPem(key: KeyObject): string {
  if (key.type !== 'private') throw new TypeError('private key expected');
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function publicKeyToPem(key: KeyObject): string {
  return key.export({ type: 'spki', format: 'pem' }).toString();
}

export function certificateToPem(cert: X509Certificate): string {
  return cert.toString().endsWith('\n') ? cert.toString() : `${cert.toString()}\n`;
}

export function certificatesToPem(certs: readonly X509Certificate[]): string {
  return certs.map(certificateToPem).join('');
}

export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/**
 * DER of the first PEM block (optionally of the given label). Throws MalformedError if there is
 * none or its body is not base64.
 */
export function pemToDer(pem: string, label?: string): Uint8Array {
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (const m of pem.matchAll(re)) {
    if (label !== undefined && m[1] !== label) continue;
    const body = m[2]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body) || body.length % 4 !== 0 || body.length === 0) {
      throw new MalformedError(`PEM block ${m[1]}: body is not base64`);
    }
    return new Uint8Array(Buffer.from(body, 'base64'));
  }
  throw new MalformedError(`no PEM block${label ? ` labelled ${label}` : ''} found`);
}

/**
 * Pledge side for tests: HTTPS requests with a client certificate, and PVR construction with
 * the shared core. The registrar's server certificate is accepted provisionally (as a pledge
 * does before it has a voucher), the presented certificate is returned for checks.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { signVoucherArtifact } from '@brski/shared/envelope/artifact';
import type { VoucherFormat } from '@brski/shared/media';
import type { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import type { VoucherRequest } from '@brski/shared/voucher/model';

export interface HttpResult { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; serverCert?: X509Certificate }

export function request(url: string, o: {
  method?: string; headers?: Record<string, string>; body?: Uint8Array | string; key?: string; cert?: string; ca?: string;
} = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, {
      method: o.method ?? 'GET', headers: o.headers ?? {}, agent: false,
      ...(o.key ? { key: o.key, cert: o.cert } : {}),
      ...(o.ca ? { ca: o.ca } : { rejectUnauthorized: false }),
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const peer = (res.socket as TLSSocket).getPeerX509Certificate?.();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ...(peer ? { serverCert: peer } : {}) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : Buffer.from(o.body));
  });
}

export interface PvrOptions {
  proximity?: 'cert' | 'pubk' | 'pubk-sha256';
  registrarCert: X509Certificate;
  serial?: string;
  nonce?: Uint8Array;
}

export async function makePvr(format: VoucherFormat, signer: SoftwareSigner, serial: string, o: PvrOptions): Promise<{ bytes: Uint8Array; nonce: Uint8Array }> {
  const nonce = o.nonce ?? new Uint8Array(randomBytes(16));
  const data: VoucherRequest = { assertion: 'proximity', nonce, serialNumber: o.serial ?? serial, createdOn: new Date().toISOString() };
  const spki = new Uint8Array(o.registrarCert.publicKey.export({ type: 'spki', format: 'der' }));
  if ((o.proximity ?? 'cert') === 'cert') data.proximityRegistrarCert = new Uint8Array(o.registrarCert.raw);
  else if (o.proximity === 'pubk') data.proximityRegistrarPubk = spki;
  else data.proximityRegistrarPubkSha256 = new Uint8Array(await crypto.subtle.digest('SHA-256', spki));
  return { bytes: await signVoucherArtifact(format, 'voucher-request', data, signer), nonce };
}

/** Minimal HTTPS client with a TLS client certificate and keep-alive (node:https, no extra deps). */
import https from 'node:https';
import type { X509Certificate } from 'node:crypto';
import { certificatesToPem } from '@brski/shared/pki/keys';
import type { Party } from './pki.ts';

export interface Reply { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; text: string }

export class TlsClient {
  readonly agent: https.Agent;
  constructor(readonly base: string, ca: X509Certificate, client?: Party) {
    this.agent = new https.Agent({
      keepAlive: true, maxSockets: 16, ca: certificatesToPem([ca]), servername: 'localhost',
      ...(client ? { key: client.keyPem, cert: certificatesToPem(client.signer.certificates) } : {}),
    });
  }

  request(method: string, path: string, body?: Uint8Array | string, headers: Record<string, string> = {}): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = https.request(`${this.base}${path}`, { method, agent: this.agent, headers: {
        ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const b = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8') });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  }

  post(path: string, body: Uint8Array | string, contentType: string, extra: Record<string, string> = {}): Promise<Reply> {
    return this.request('POST', path, body, { 'content-type': contentType, ...extra });
  }

  close(): void { this.agent.destroy(); }
}

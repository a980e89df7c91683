/**
 * Factory station: manufactures pledges. For each device it has the secure element generate the
 * IDevID key and a CSR inside, posts CSR + serial to the MASA's factory endpoint over mutual TLS
 * (station credential), checks that the returned IDevID carries the SE's key, the serial and
 * chains to the manufacturer's IDevID CA, installs it, and the SE becomes `manufactured`.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { Agent, request } from 'node:https';
import { BrskiError } from '@brski/shared/errors';
import { verifyChain } from '@brski/shared/pki/chain';
import { serialNumberOf } from '@brski/shared/pki/identity';
import { createSeCsr } from '../se/csr.ts';
import { SecureElement } from '../se/secure-element.ts';
import type { EcCurve } from '../se/types.ts';

export interface StationOptions {
  /** Full URL of the MASA factory endpoint (route chosen by the MASA, see docs/masa.md). */
  endpoint: string;
  /** Station TLS client credential: PEM key and certificate chain (leaf first). */
  key: string | KeyObject;
  certificates: readonly X509Certificate[];
  /** Anchors for the MASA's TLS server certificate; the connection is refused otherwise. */
  masaTlsAnchors: readonly X509Certificate[];
  /** Anchors the returned IDevID must chain to (manufacturer IDevID CA or its root). */
  idevidAnchors: readonly X509Certificate[];
  productLine?: string;
  location?: string;
  curve?: EcCurve;
  timeoutMs?: number;
  /** Retries on 429/503 (Retry-After honoured, capped at 5 s). */
  retries?: number;
}

interface FactoryResponse { status: number; body: Buffer; retryAfter: string | undefined }

/** Certificates in a JSON field: PEM text, base64 DER, or an array of either. */
export function certificatesFromField(v: unknown): X509Certificate[] {
  if (v === undefined || v === null) return [];
  if (Array.isArray(v)) return v.flatMap(certificatesFromField);
  if (typeof v !== 'string') throw new BrskiError('upstream-invalid', 'factory: certificate field must be a string or an array');
  if (v.includes('-----BEGIN CERTIFICATE-----')) {
    return (v.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((b) => new X509Certificate(b));
  }
  return [new X509Certificate(Buffer.from(v, 'base64'))];
}

export class FactoryStation {
  readonly #opts: StationOptions;
  readonly #agent: Agent;
  readonly #url: URL;

  constructor(opts: StationOptions) {
    this.#opts = opts;
    this.#url = new URL(opts.endpoint);
    const key = typeof opts.key === 'string' ? opts.key : (opts.key.export({ type: 'pkcs8', format: 'pem' }) as string);
    // The station talks to its MASA only: server authenticated by the configured anchors.
    this.#agent = new Agent({
      keepAlive: true, maxSockets: 16, key, cert: opts.certificates.map((c) => c.toString()).join('\n'),
      ca: opts.masaTlsAnchors.map((c) => c.toString()), minVersion: 'TLSv1.2',
    });
  }

  /** Manufactures one device: returns its secure element in state `manufactured`. */
  async manufacture(serial: string): Promise<SecureElement> {
    const se = new SecureElement({ label: serial });
    const handle = se.generateKey('idevid', this.#opts.curve ?? 'P-256', 'factory');
    const csr = await createSeCsr(se, handle, [['CN', serial], ['serialNumber', serial]]);
    const body = JSON.stringify({
      serialNumber: serial, csr: Buffer.from(csr).toString('base64'),
      ...(this.#opts.productLine ? { productLine: this.#opts.productLine } : {}),
      ...(this.#opts.location ? { location: this.#opts.location } : {}),
    });
    const res = await this.#post(body);
    let doc: Record<string, unknown>;
    try { doc = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>; } catch (e) {
      throw new BrskiError('upstream-invalid', 'factory: response is not JSON', { cause: e });
    }
    const certs = [...certificatesFromField(doc['certificate'] ?? doc['idevid']), ...certificatesFromField(doc['chain'])];
    this.#check(certs, se.getPublicKey(handle), serial);
    se.installCertificate(handle, certs, `factory station ${this.#opts.certificates[0]?.subject.replace(/\n/g, ', ') ?? ''}`);
    return se;
  }

  close(): void { this.#agent.destroy(); }

  #check(certs: X509Certificate[], publicKey: KeyObject, serial: string): void {
    const leaf = certs[0];
    if (!leaf) throw new BrskiError('upstream-invalid', 'factory: no IDevID in the response');
    if (!leaf.publicKey.equals(publicKey)) throw new BrskiError('upstream-invalid', 'factory: IDevID does not carry the secure element key');
    if (serialNumberOf(leaf) !== serial) throw new BrskiError('serial-mismatch', `factory: IDevID serial ${serialNumberOf(leaf) ?? '(none)'} is not ${serial}`);
    verifyChain(leaf, certs.slice(1), this.#opts.idevidAnchors, new Date());
  }

  async #post(body: string): Promise<FactoryResponse> {
    const retries = this.#opts.retries ?? 5;
    for (let attempt = 0; ; attempt++) {
      const res = await this.#send(body);
      if (res.status === 200 || res.status === 201) return res;
      if ((res.status === 429 || res.status === 503) && attempt < retries) {
        const ra = Math.min(5, Number(res.retryAfter ?? '1') || 1);
        await new Promise((r) => setTimeout(r, ra * 1000));
        continue;
      }
      const text = res.body.subarray(0, 300).toString('utf8').trim();
      const code = res.status === 409 ? 'clone-detected' : res.status === 403 || res.status === 401 ? 'forbidden' : 'upstream-invalid';
      throw new BrskiError(code, `factory: HTTP ${res.status}${text ? `: ${text}` : ''}`, { detail: { status: res.status } });
    }
  }

  #send(body: string): Promise<FactoryResponse> {
    return new Promise((resolve, reject) => {
      const req = request({
        protocol: 'https:', hostname: this.#url.hostname, port: this.#url.port || 443, path: this.#url.pathname,
        method: 'POST', agent: this.#agent, timeout: this.#opts.timeoutMs ?? 30_000,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), accept: 'application/json' },
      }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts), retryAfter: res.headers['retry-after'] }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new BrskiError('upstream-timeout', 'factory: no answer in time')));
      req.on('error', (e) => reject(e instanceof BrskiError ? e : new BrskiError('upstream-unavailable', `factory: ${e.message}`, { cause: e })));
      req.end(body);
    });
  }
}

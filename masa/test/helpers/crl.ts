/**
 * Revocation fixtures: registrar certificates carrying a CRL distribution point (or only an OCSP
 * AIA URL) — built through issueCertificate's `extraExtensions`, the extension DER from pkijs —
 * and a small HTTP server that serves CRLs by path and counts requests.
 */
import type { X509Certificate } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as pkijs from 'pkijs';
import { createCrl, type RevokedEntry } from '@brski/shared/pki/crl';
import { registrarProfile, type ExtensionInput } from '@brski/shared/pki/certificate';
import { leaf, type Party } from './pki.ts';

const URI = 6;

export function crlDistributionPointsExtension(urls: readonly string[]): ExtensionInput {
  const ext = new pkijs.CRLDistributionPoints({ distributionPoints: urls.map((u) => new pkijs.DistributionPoint({
    distributionPoint: [new pkijs.GeneralName({ type: URI, value: u })] })) });
  return { oid: '2.5.29.31', value: new Uint8Array(ext.toSchema().toBER()) };
}

export function ocspAiaExtension(url: string): ExtensionInput {
  const ext = new pkijs.InfoAccess({ accessDescriptions: [new pkijs.AccessDescription({
    accessMethod: '1.3.6.1.5.5.7.48.1', accessLocation: new pkijs.GeneralName({ type: URI, value: url }) })] });
  return { oid: '1.3.6.1.5.5.7.1.1', value: new Uint8Array(ext.toSchema().toBER()) };
}

/** A registrar certificate (cmcRA + TLS) issued by `ca` with the given extra extensions. */
export function registrarWith(ca: Party, cn: string, extraExtensions: readonly ExtensionInput[]): Promise<Party> {
  return leaf(ca, (publicKey) => ({ ...registrarProfile({ subject: [['CN', cn]], publicKey }), extraExtensions }));
}

export function issueCrl(ca: Party, revoked: readonly X509Certificate[],
  window: { thisUpdate?: Date; nextUpdate?: Date } = {}): Promise<Uint8Array> {
  const entries: RevokedEntry[] = revoked.map((c) => ({ serialNumber: c.serialNumber, revokedAt: new Date(Date.now() - 60_000),
    reason: 'keyCompromise' }));
  return createCrl({ issuer: ca.signer, issuerCertificate: ca.cert, revoked: entries,
    thisUpdate: window.thisUpdate ?? new Date(Date.now() - 60_000), nextUpdate: window.nextUpdate ?? new Date(Date.now() + 86_400_000),
    crlNumber: 1 });
}

/** Serves `crls[path]` as application/pkix-crl; 404 otherwise. Counts requests per path. */
export class CrlServer {
  readonly crls = new Map<string, Uint8Array>();
  readonly hits = new Map<string, number>();
  readonly #server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
    const body = this.crls.get(path);
    if (!body) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': 'application/pkix-crl', 'content-length': body.length }).end(Buffer.from(body));
  });

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  url(path: string): string { return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}${path}`; }

  stop(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * A scriptable registrar+MASA stand-in for pledge unit tests: it answers the pledge's PVR with a
 * voucher signed by the test MASA key, with knobs that break exactly one voucher property, and
 * serves EST from the domain CA. It records what the pledge sent and how it connected.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { Signer } from '@brski/shared/crypto/signer';
import { inspectVoucherArtifact, signVoucherArtifact } from '@brski/shared/envelope/artifact';
import { decodeBase64Body, encodeBase64Body } from '@brski/shared/est/base64-body';
import { encodeCertsOnly } from '@brski/shared/est/certs-only';
import { VOUCHER_MEDIA_TYPE, formatFromMediaType, MEDIA } from '@brski/shared/media';
import { verifyCsr, type ParsedCsr } from '@brski/shared/pki/csr';
import type { Voucher, VoucherRequest } from '@brski/shared/voucher/model';
import { issueLdevid, type Domain, type Manufacturer } from './fixture-pki.ts';

export interface FakeKnobs {
  /** Answer 202 (Retry-After `retryAfter`) this many times before the voucher. */
  pending?: number;
  retryAfter?: string;
  /** Mutate the voucher before signing. */
  mutate?: (v: Voucher) => void;
  /** Sign with this signer instead of the MASA. */
  signWith?: Signer;
  /** CMS: no `certificates` field (the pledge must use its pre-stored MASA signer). */
  omitCertificates?: boolean;
  /** Pin this certificate instead of the domain CA. */
  pinCert?: X509Certificate;
  /** Answer requestvoucher with this status instead. */
  refuse?: number;
  /** Redirect every request to this origin. */
  redirectTo?: string;
  /** DER CsrAttrs to serve (default: 204, no requirements). */
  csrAttrs?: Uint8Array;
  /** Answer simpleenroll with this status instead of a certificate. */
  enrollStatus?: number;
  /** Issue LDevIDs from this domain's CA instead (a CA the pledge was not given). */
  issueFrom?: Domain;
}

export interface Recorded {
  pvrs: Buffer[];
  voucherStatus: Array<Record<string, unknown>>;
  enrollStatus: Array<{ body: Record<string, unknown>; clientCert: string | undefined }>;
  /** One entry per TLS connection: SNI seen and client certificate subject. */
  connections: Array<{ servername: string | false | null | undefined; clientCert: string | undefined }>;
  paths: string[];
  issued: X509Certificate[];
  csrs: ParsedCsr[];
}

export interface FakeRegistrar { origin: string; knobs: FakeKnobs; recorded: Recorded; close(): Promise<void> }

function read(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d)).on('end', () => resolve(Buffer.concat(parts))).on('error', reject);
  });
}

export async function startFakeRegistrar(m: Manufacturer, d: Domain, knobs: FakeKnobs = {}): Promise<FakeRegistrar> {
  const recorded: Recorded = { pvrs: [], voucherStatus: [], enrollStatus: [], connections: [], paths: [], issued: [], csrs: [] };
  let pendingLeft = knobs.pending ?? 0;
  const server: Server = createServer({
    key: d.registrarKey.export({ type: 'pkcs8', format: 'pem' }), cert: [d.registrar.toString(), d.ca.toString()].join('\n'),
    requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2',
  }, (req, res) => { handle(req, res).catch((e: Error) => { res.statusCode = 500; res.end(e.message); }); });
  server.on('secureConnection', (s: TLSSocket) => {
    recorded.connections.push({ servername: s.servername, clientCert: s.getPeerX509Certificate()?.subject });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await read(req);
    const path = req.url ?? '';
    recorded.paths.push(path);
    const peer = (req.socket as TLSSocket).getPeerX509Certificate();
    if (knobs.redirectTo) { res.writeHead(307, { location: `${knobs.redirectTo}${path}` }).end(); return; }
    if (path === '/.well-known/brski/requestvoucher') {
      recorded.pvrs.push(body);
      if (knobs.refuse) { res.writeHead(knobs.refuse, { 'content-type': 'text/plain' }).end('refused'); return; }
      if (pendingLeft > 0) { pendingLeft--; res.writeHead(202, { 'retry-after': knobs.retryAfter ?? '0' }).end(); return; }
      const format = formatFromMediaType(req.headers['content-type'])!;
      const pvr = inspectVoucherArtifact(format, body, { strict: false, kind: 'voucher-request' }).decoded.data as VoucherRequest;
      const v: Voucher = {
        createdOn: new Date().toISOString(), assertion: 'proximity', serialNumber: pvr.serialNumber,
        nonce: pvr.nonce, pinnedDomainCert: new Uint8Array((knobs.pinCert ?? d.ca).raw),
      };
      knobs.mutate?.(v);
      const bytes = await signVoucherArtifact(format, 'voucher', v, knobs.signWith ?? m.masa, knobs.omitCertificates ? { omitCertificates: true } : {});
      res.writeHead(200, { 'content-type': VOUCHER_MEDIA_TYPE[format] }).end(Buffer.from(bytes));
      return;
    }
    if (path === '/.well-known/brski/voucher_status') { recorded.voucherStatus.push(JSON.parse(body.toString())); res.end(); return; }
    if (path === '/.well-known/brski/enrollstatus') {
      recorded.enrollStatus.push({ body: JSON.parse(body.toString()), clientCert: peer?.subject }); res.end(); return;
    }
    if (path === '/.well-known/est/cacerts') {
      res.writeHead(200, { 'content-type': MEDIA.pkcs7CertsOnly }).end(encodeBase64Body(encodeCertsOnly([d.ca]))); return;
    }
    if (path === '/.well-known/est/csrattrs') {
      if (!knobs.csrAttrs) { res.writeHead(204).end(); return; }
      res.writeHead(200, { 'content-type': MEDIA.csrattrs }).end(encodeBase64Body(knobs.csrAttrs));
      return;
    }
    if (path === '/.well-known/est/simpleenroll' || path === '/.well-known/est/simplereenroll') {
      if (knobs.enrollStatus) { res.writeHead(knobs.enrollStatus, { 'content-type': 'text/plain' }).end('not today'); return; }
      const csr = verifyCsr(decodeBase64Body(body.toString()));
      recorded.csrs.push(csr);
      const serial = csr.subject.find(([k]) => k === 'serialNumber')?.[1] ?? 'unknown';
      const cert = await issueLdevid(knobs.issueFrom ?? d, serial, csr.publicKey);
      recorded.issued.push(cert);
      res.writeHead(200, { 'content-type': MEDIA.pkcs7CertsOnly }).end(encodeBase64Body(encodeCertsOnly([cert])));
      return;
    }
    res.writeHead(404).end();
  }

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    origin: `https://127.0.0.1:${port}`, knobs, recorded,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

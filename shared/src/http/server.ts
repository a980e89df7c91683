/**
 * The HTTPS server both services run: TLS 1.2+ with forward-secret AEAD suites only, client
 * certificates requested but verified by the application (each service has its own anchors and
 * policy: the registrar accepts IDevIDs of any allow-listed vendor, the MASA accepts registrars it
 * has vouched for), explicit timeouts, and a graceful close for rolling restarts.
 */
import { constants } from 'node:crypto';
import https from 'node:https';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo, Socket } from 'node:net';
import type Koa from 'koa';

/**
 * TLS 1.2 suites: ECDHE key exchange (forward secrecy) with AEAD ciphers only, ECDSA first
 * because BRSKI deployments use EC keys. TLS 1.3 suites are listed explicitly so that the list
 * is the whole truth (all three 1.3 suites are ECDHE/AEAD by construction).
 */
export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-CHACHA20-POLY1305',
] as const;
export const TLS13_CIPHERS = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'] as const;
export const CIPHER_LIST = [...TLS13_CIPHERS, ...TLS12_CIPHERS].join(':');

type PemInput = string | Buffer | Array<string | Buffer>;

export interface TlsServerOptions {
  /** Server private key (PEM). Never logged. */
  key: string | Buffer;
  /** Server certificate followed by its intermediates (PEM, concatenated or as an array). */
  cert: PemInput;
  /**
   * CAs used only to build the chain OpenSSL hands to the app (and for the CertificateRequest
   * hint list); they do not decide acceptance: `rejectUnauthorized` is false.
   */
  ca?: PemInput;
  /** Ask the peer for a certificate. Default true (BRSKI and EST need the client certificate). */
  requestCert?: boolean;
  /** Time allowed to receive the request headers. Default 10 s. */
  headersTimeoutMs?: number;
  /** Time allowed to receive the whole request. Default 30 s. */
  requestTimeoutMs?: number;
  /** Idle time before a keep-alive connection is closed. Default 5 s. */
  keepAliveTimeoutMs?: number;
  /** Maximum size of request headers in bytes. Default 16 KiB. */
  maxHeaderSize?: number;
  /**
   * Allow TLS session resumption (tickets). Default false: on a resumed session OpenSSL keeps
   * only the client's leaf certificate, not the intermediates it sent, and both services need
   * the whole client chain. (`sessionTimeout: 0` does NOT turn resumption off; this does.)
   */
  sessionResumption?: boolean;
  /** Extra options passed to https.createServer (e.g. sessionTimeout); cannot weaken the TLS floor. */
  tlsExtra?: Omit<https.ServerOptions, 'minVersion' | 'maxVersion' | 'ciphers' | 'secureProtocol' | 'rejectUnauthorized'>;
}

export function createTlsServer(app: Koa, opts: TlsServerOptions): https.Server {
  const server = https.createServer({
    ...opts.tlsExtra,
    key: opts.key,
    cert: opts.cert,
    ...(opts.ca === undefined ? {} : { ca: opts.ca }),
    minVersion: 'TLSv1.2',
    ciphers: CIPHER_LIST,
    honorCipherOrder: true,
    ecdhCurve: 'X25519:P-256:P-384',
    requestCert: opts.requestCert ?? true,
    // The app verifies the client chain against its own anchors and policy and answers with a
    // protocol-level error (e.g. 401/403 with a reason) instead of a bare handshake failure.
    rejectUnauthorized: false,
    maxHeaderSize: opts.maxHeaderSize ?? 16 * 1024,
    secureOptions: (opts.tlsExtra?.secureOptions ?? 0) | (opts.sessionResumption === true ? 0 : constants.SSL_OP_NO_TICKET),
    // Node checks headers/request timeouts only this often (default 30 s): slow clients would
    // otherwise hold a socket three times longer than the configured limit.
    connectionsCheckingInterval: 1_000,
  }, app.callback());
  server.on('clientError', answerClientError);
  server.headersTimeout = opts.headersTimeoutMs ?? 10_000;
  server.requestTimeout = opts.requestTimeoutMs ?? 30_000;
  server.keepAliveTimeout = opts.keepAliveTimeoutMs ?? 5_000;
  trackConnections(server);
  return server;
}

/**
 * Errors the HTTP parser raises before koa sees a request (oversized headers, garbage, timeouts):
 * answer with a status and a plain-text reason, like every other refusal, instead of Node's bare one.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) { socket.destroy(); return; }
  const [status, reason] = err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'too-large: request headers exceed the limit']
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'timeout: request not received in time']
      : [400, 'malformed: bad HTTP request'];
  const body = `${reason}\n`;
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n`
    + `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** Listens (port 0 = any free port) and resolves with the bound port. */
export function listen(server: https.Server | import('node:http').Server, port: number, host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

const closing = new WeakSet<object>();
const sockets = new WeakMap<object, Set<Socket>>();

function trackConnections(server: https.Server): void {
  const set = new Set<Socket>();
  sockets.set(server, set);
  server.on('secureConnection', (socket: Socket) => {
    set.add(socket);
    socket.once('close', () => set.delete(socket));
  });
  // While closing, tell keep-alive clients to go elsewhere after the current response. Decided
  // when the headers go out, because requests already in flight when close starts matter most.
  server.on('request', (_req, res: ServerResponse) => {
    const writeHead = res.writeHead;
    res.writeHead = function patchedWriteHead(this: ServerResponse, ...args: unknown[]) {
      if (closing.has(server) && !this.headersSent) this.setHeader('Connection', 'close');
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as typeof res.writeHead;
  });
}

/**
 * Stops accepting connections, lets requests in flight finish, closes keep-alive sockets as soon
 * as they go idle, and after `timeoutMs` destroys whatever is left. Resolves when the server is
 * closed. Safe to call twice.
 */
export async function closeGracefully(server: https.Server | import('node:http').Server, timeoutMs = 10_000): Promise<void> {
  if (!server.listening && (sockets.get(server)?.size ?? 0) === 0) return;
  closing.add(server);
  const closed = new Promise<void>((resolve) => {
    server.close(() => resolve());
  });
  // server.close() only closes the connections idle at that instant; connections finishing a
  // request later would otherwise linger until keepAliveTimeout.
  const sweep = setInterval(() => server.closeIdleConnections(), 25);
  const deadline = new Promise<'timeout'>((resolve) => {
    const t = setTimeout(() => resolve('timeout'), timeoutMs);
    t.unref();
  });
  try {
    if ((await Promise.race([closed, deadline])) === 'timeout') {
      server.closeAllConnections();
      for (const s of sockets.get(server) ?? []) s.destroy();
      await closed;
    }
  } finally {
    clearInterval(sweep);
  }
}

/**
 * CoAP client over one DTLS session: the `coap` package's Agent (confirmable messages,
 * retransmission, separate responses, Block2 reassembly) given a socket-like adapter that
 * encrypts through the DtlsClient.
 */
import { EventEmitter } from 'node:events';
import { Agent, type IncomingMessage } from 'coap';
import { BrskiError } from '@brski/shared/errors';
import { DtlsClient, type DtlsClientOptions } from './dtls-client.ts';

export interface CoapReply {
  code: string;
  payload: Buffer;
  contentFormat?: number;
  maxAge?: number;
}

export interface CoapCall {
  method: 'GET' | 'POST';
  path: string;
  query?: string;
  payload?: Uint8Array;
  contentFormat?: number;
  accept?: number;
  /** Extra options by name or number (e.g. '13' for Uri-Path-Abbrev). */
  options?: Record<string, Buffer | number | string>;
  timeoutMs?: number;
}

/**
 * Payloads above this go out block-wise (RFC 7959 Block1). 512 bytes keeps each CoAP message plus
 * the DTLS record overhead inside the 1024-byte datagrams digest §9.3 assumes; a 1024-byte block
 * would not fit. The server may ask for smaller blocks in its 2.31 answer (the package follows).
 */
export const BLOCK1_BYTES = 512;
const BLOCK1_SZX = Math.log2(BLOCK1_BYTES) - 4;

class DtlsSocketAdapter extends EventEmitter {
  readonly type = 'udp4';
  constructor(private readonly dtls: DtlsClient, private readonly remote: { address: string; port: number }) {
    super();
    dtls.on('message', (m) => this.emit('message', m, { ...remote, family: 'IPv4', size: m.length }));
  }
  send(buf: Buffer, offset: number, length: number, _port: number, _host: string, cb?: (e: Error | null, n: number) => void): void {
    try {
      this.dtls.send(buf.subarray(offset, offset + length));
      cb?.(null, length);
    } catch (err) {
      cb?.(err as Error, 0);
    }
  }
  address() { return { address: '0.0.0.0', port: 0, family: 'IPv4' }; }
}

function uintOption(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (Buffer.isBuffer(v)) return v.length === 0 ? 0 : v.readUIntBE(0, Math.min(v.length, 6));
  return undefined;
}

const NAMED: Record<string, number> = {
  'text/plain': 0, 'application/link-format': 40, 'application/json': 50, 'application/cbor': 60, 'application/multipart-core': 62,
  'application/pkcs7-mime; smime-type=certs-only': 281, 'application/csrattrs': 285, 'application/pkcs10': 286, 'application/pkix-cert': 287,
};

export class CoapsClient {
  readonly #agent: Agent;
  readonly dtls: DtlsClient;
  readonly #remote: { host: string; port: number };

  private constructor(dtls: DtlsClient, remote: { host: string; port: number }) {
    this.dtls = dtls;
    this.#remote = remote;
    this.#agent = new Agent({ socket: new DtlsSocketAdapter(dtls, { address: remote.host, port: remote.port }) as never });
  }

  static async connect(o: DtlsClientOptions): Promise<CoapsClient> {
    return new CoapsClient(await DtlsClient.connect(o), { host: o.host, port: o.port });
  }

  request(c: CoapCall): Promise<CoapReply> {
    if (this.dtls.closed) return Promise.reject(new BrskiError('unavailable', `CoAP ${c.method} ${c.path}: DTLS session closed`));
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      // A session that ends (alert, ICMP unreachable, close_notify) answers nothing more: fail now, not at the timeout.
      const onClose = (reason: string) => done(new BrskiError('unavailable', `CoAP ${c.method} ${c.path}: DTLS session ended (${reason})`));
      const done = (err?: Error) => { clearTimeout(timer); this.dtls.off('close', onClose); if (err) reject(err); };
      const req = this.#agent.request({
        hostname: this.#remote.host, port: this.#remote.port, method: c.method, pathname: c.path, confirmable: true,
        ...(c.query ? { query: c.query } : {}),
        ...(c.contentFormat !== undefined ? { contentFormat: c.contentFormat } : {}),
        ...(c.accept !== undefined ? { accept: c.accept } : {}),
        ...(c.options ? { options: c.options } : {}),
      });
      if (c.payload && c.payload.length > BLOCK1_BYTES) req.setOption('Block1', Buffer.of(BLOCK1_SZX));
      this.dtls.once('close', onClose);
      timer = setTimeout(() => done(new BrskiError('upstream-timeout', `CoAP ${c.method} ${c.path}: no response`)), c.timeoutMs ?? 30_000);
      req.on('response', (res: IncomingMessage) => {
        done();
        const cf = res.headers['Content-Format'];
        const contentFormat = typeof cf === 'string' ? NAMED[cf] : uintOption(cf);
        const maxAge = uintOption(res.headers['Max-Age']);
        resolve({ code: res.code, payload: res.payload, ...(contentFormat === undefined ? {} : { contentFormat }), ...(maxAge === undefined ? {} : { maxAge }) });
      });
      req.on('error', (err: Error) => done(err));
      req.end(c.payload ? Buffer.from(c.payload) : undefined);
    });
  }

  close(): void {
    this.#agent.close();
    this.dtls.close();
  }
}

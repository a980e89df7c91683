/**
 * The registrar's cBRSKI listener: DTLS 1.2 (dtls-server.ts) carrying CoAP (`coap` package
 * Server, which does message dedup, piggybacked/separate responses and Block2 segmentation) with
 * the resources of resources.ts, on one UDP port. Datagrams are validated and Block1 uploads
 * reassembled by the socket adapter (coap-socket.ts) before the package sees them.
 */
import type { AddressInfo } from 'node:net';
import { Server as CoapServer } from 'coap';
import type { Logger } from 'pino';
import { BrskiError } from '@brski/shared/errors';
import { DtlsCoapSocket } from './coap-socket.ts';
import { SHORT_BASES, URI_PATH_ABBREV, URI_PATH_ABBREV_OPTION } from './discovery.ts';
import { DtlsServer, type DtlsServerOptions } from './dtls-server.ts';
import { answerError, coapHandlers, type CoapRequest, type CoapResponse } from './resources.ts';
import type { CoapsServices } from './services.ts';

export interface CoapsServerOptions {
  dtls: Omit<DtlsServerOptions, 'logger'>;
  services: CoapsServices;
  logger: Logger;
  bodyBytes?: number;
}

export interface CoapsServer {
  readonly dtls: DtlsServer;
  listen(port: number, host?: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

/** Path of a request after Uri-Path-Abbrev expansion and short-base aliasing; throws 4.02 per the draft. */
export function resolvePath(req: CoapRequest): string {
  const abbrev = req.options.filter((o) => o.name === String(URI_PATH_ABBREV_OPTION));
  const path = req.url.split('?')[0] ?? '/';
  if (abbrev.length > 0) {
    const hasUriPath = req.options.some((o) => o.name === 'Uri-Path');
    const raw = abbrev[0]!.value;
    const bytes = Buffer.isBuffer(raw) ? raw : Buffer.alloc(0);
    if (abbrev.length > 1 || hasUriPath || bytes.length > 4) throw new BadOption('Uri-Path-Abbrev must be alone and not repeated');
    const value = bytes.length === 0 ? 0 : bytes.readUIntBE(0, bytes.length);
    const expanded = URI_PATH_ABBREV.get(value);
    if (!expanded) throw new BadOption(`unknown Uri-Path-Abbrev value ${value}`);
    return expanded;
  }
  for (const [short, full] of SHORT_BASES) if (path.startsWith(short)) return full + path.slice(short.length);
  return path;
}

class BadOption extends Error {}

export function createCoapsServer(o: CoapsServerOptions): CoapsServer {
  const dtls = new DtlsServer({ ...o.dtls, logger: o.logger });
  const bodyBytes = o.bodyBytes ?? 64 * 1024;
  const log = o.logger.child({ transport: 'coaps' });
  const socket = new DtlsCoapSocket(dtls, { bodyBytes, logger: log });
  const handlers = coapHandlers(o.services, { bodyBytes });
  const coap = new CoapServer({ piggybackReplyMs: 50 });

  coap.on('request', (req: CoapRequest & { rsinfo: AddressInfo }, res: CoapResponse) => {
    const peerId = `${req.rsinfo.address}:${req.rsinfo.port}`;
    // The coap package emits 'error' on the response when it cannot be sent (the peer's DTLS
    // session ended before a separate response or a retransmission); unhandled, that would
    // take the whole registrar down.
    (res as unknown as NodeJS.EventEmitter).on('error', (err: Error) => log.debug({ peer: peerId, err: err.message }, 'CoAP response not delivered'));
    const peer = dtls.peer(peerId);
    let disconnect = false;
    const ctx = { certificates: peer?.certificates ?? [], disconnect: () => { disconnect = true; }, logger: log };
    const started = Date.now();
    const run = async () => {
      let path: string;
      try {
        path = resolvePath(req);
      } catch (err) {
        if (err instanceof BadOption) { res.code = '4.02'; res.end(Buffer.from(err.message)); return; }
        throw err;
      }
      const handler = handlers.get(path);
      try {
        if (!handler) throw new BrskiError('not-found', `no resource ${path}`);
        await handler(req, res, ctx);
        log.debug({ peer: peerId, method: req.method, path, code: res.code, ms: Date.now() - started }, 'CoAP request');
      } catch (err) {
        answerError(err, res, log);
        log.info({ peer: peerId, method: req.method, path, code: res.code, reason: (err as Error).message }, 'CoAP request refused');
      }
    };
    run().catch((err: unknown) => log.error({ err }, 'CoAP request crashed')).finally(() => {
      // Let the answer leave before the session goes (close_notify follows it).
      if (disconnect) setImmediate(() => dtls.disconnect(peerId, 'proximity mismatch'));
    });
  });
  coap.on('error', (err: Error) => log.warn({ err: err.message }, 'CoAP server error'));

  return {
    dtls,
    async listen(port, host = '::') {
      const addr = await dtls.listen(port, host);
      coap.listen(socket);
      log.info({ port: addr.port, address: addr.address }, 'cBRSKI CoAPS listening');
      return addr;
    },
    async close() {
      await new Promise<void>((r) => coap.close(() => r()));
      await dtls.close();
    },
  };
}

/**
 * cBRSKI and EST-coaps resources (digest §9.1, §4.1): one handler per resource, parsing the CoAP
 * request, calling the registrar's services and mapping BrskiErrors to CoAP codes (digest §3.3,
 * via ERROR_STATUS). Payloads are binary DER / CBOR, never base64.
 */
import { createHash, type X509Certificate } from 'node:crypto';
import type { Logger } from 'pino';
import { BrskiError } from '@brski/shared/errors';
import { cborEncode } from '@brski/shared/voucher/cbor-codec';
import { encodeCertsOnly } from '@brski/shared/est/certs-only';
import { COAP_CONTENT_FORMAT as CF } from '@brski/shared/media';
import { linkFormat } from './discovery.ts';
import type { CoapsServices } from './services.ts';

/** The parts of coap's IncomingMessage / OutgoingMessage the handlers use. */
export interface CoapRequest {
  method: string;
  url: string;
  payload: Buffer;
  headers: Record<string, unknown>;
  options: Array<{ name: string; value: unknown }>;
}
export interface CoapResponse {
  code: string;
  setOption(name: string, value: number | string | Buffer): void;
  end(payload?: Buffer): void;
}

export interface RequestContext {
  /** Client certificates from the DTLS handshake, leaf first (empty without one). */
  certificates: readonly X509Certificate[];
  /** Ends the DTLS session once the answer is out (proximity mismatch, digest §3.3). */
  disconnect(): void;
  logger: Logger;
}

/** Named content formats the coap package hands us as strings. */
const NAMED_FORMATS: Record<string, number> = {
  'text/plain': 0, 'application/link-format': 40, 'application/json': 50, 'application/cbor': 60, 'application/multipart-core': 62,
  'application/pkcs7-mime; smime-type=certs-only': 281, 'application/pkcs8': 284, 'application/csrattrs': 285,
  'application/pkcs10': 286, 'application/pkix-cert': 287,
};

export function contentFormatOf(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') return NAMED_FORMATS[value];
  return undefined;
}

class Answer extends Error {
  constructor(readonly code: string, message: string) { super(message); }
}

function requireMethod(req: CoapRequest, method: 'GET' | 'POST'): void {
  if (req.method !== method) throw new Answer('4.05', `${method} only`);
}

/** Content-Format must be one of `allowed`; 4.15 otherwise (digest §3.3 DECISION). */
function requireFormat(req: CoapRequest, allowed: readonly number[]): number {
  const cf = contentFormatOf(req.headers['Content-Format']);
  if (cf === undefined || !allowed.includes(cf)) throw new BrskiError('unsupported-media-type', `Content-Format must be ${allowed.join(' or ')}`);
  return cf;
}

/** The response format among `offered`: the Accept option's if present (4.06 if not offered), else the default. */
function negotiate(req: CoapRequest, offered: readonly number[], dflt: number): number {
  const raw = req.headers['Accept'];
  if (raw === undefined) return dflt;
  const accept = contentFormatOf(raw);
  if (accept === undefined || !offered.includes(accept)) throw new BrskiError('not-acceptable', `Accept must be one of ${offered.join(', ')}`);
  return accept;
}

function nonEmpty(req: CoapRequest, limit: number): Uint8Array {
  if (req.payload.length === 0) throw new BrskiError('malformed', 'empty payload');
  if (req.payload.length > limit) throw new BrskiError('too-large', `payload over ${limit} bytes`);
  return new Uint8Array(req.payload);
}

function certsIn(format: number, certs: readonly X509Certificate[]): Buffer {
  if (format === CF.pkixCert) return Buffer.from(certs[0]!.raw);
  if (format === CF.multipartCore) return Buffer.from(cborEncode(certs.flatMap((c) => [CF.pkixCert, new Uint8Array(c.raw)])));
  return Buffer.from(encodeCertsOnly([...certs]));
}

type Handler = (req: CoapRequest, res: CoapResponse, ctx: RequestContext) => Promise<void>;

export function coapHandlers(s: CoapsServices, limits: { bodyBytes: number }): Map<string, Handler> {
  const reply = (res: CoapResponse, code: string, format?: number, payload?: Buffer) => {
    res.code = code;
    if (format !== undefined) res.setOption('Content-Format', format);
    res.end(payload);
  };
  const enrollment = (which: 'enroll' | 'reenroll'): Handler => async (req, res, ctx) => {
    requireMethod(req, 'POST');
    requireFormat(req, [CF.pkcs10]);
    const format = negotiate(req, [CF.pkcs7CertsOnly, CF.pkixCert], CF.pkcs7CertsOnly);
    const cert = await s[which](nonEmpty(req, limits.bodyBytes), ctx.certificates);
    reply(res, '2.04', format, certsIn(format, [cert]));
  };
  const telemetry = (kind: 'voucherStatus' | 'enrollStatus'): Handler => async (req, res, ctx) => {
    requireMethod(req, 'POST');
    const cf = requireFormat(req, [CF.cbor, CF.json]);
    await s.recordTelemetry(kind, nonEmpty(req, Math.min(limits.bodyBytes, 16 * 1024)), cf === CF.cbor ? 'cbor' : 'json', ctx.certificates);
    reply(res, '2.04');
  };

  const handlers = new Map<string, Handler>([
    ['/.well-known/core', async (req, res) => {
      requireMethod(req, 'GET');
      const query = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
      reply(res, '2.05', CF.linkFormat, Buffer.from(linkFormat(query)));
    }],
    ['/.well-known/brski/rv', async (req, res, ctx) => {
      requireMethod(req, 'POST');
      requireFormat(req, [CF.voucherCose]);
      negotiate(req, [CF.voucherCose], CF.voucherCose);
      try {
        const voucher = await s.requestVoucher(nonEmpty(req, limits.bodyBytes), ctx.certificates);
        reply(res, '2.04', CF.voucherCose, Buffer.from(voucher));
      } catch (err) {
        if (err instanceof BrskiError && err.code === 'proximity-mismatch') ctx.disconnect();
        throw err;
      }
    }],
    ['/.well-known/brski/vs', telemetry('voucherStatus')],
    ['/.well-known/brski/es', telemetry('enrollStatus')],
    ['/.well-known/est/crts', async (req, res, ctx) => {
      requireMethod(req, 'GET');
      await s.authenticateClient(ctx.certificates);
      const format = negotiate(req, [CF.pkcs7CertsOnly, CF.pkixCert, CF.multipartCore], CF.pkcs7CertsOnly);
      const body = certsIn(format, s.caCertificates());
      // ETag lets pledges poll for trust-anchor changes cheaply (cBRSKI /crts SHOULD).
      res.setOption('ETag', createHash('sha256').update(body).digest().subarray(0, 8));
      reply(res, '2.05', format, body);
    }],
    ['/.well-known/est/att', async (req, res, ctx) => {
      requireMethod(req, 'GET');
      await s.authenticateClient(ctx.certificates);
      reply(res, '2.05', CF.csrattrs, Buffer.from(s.csrAttrs()));
    }],
    ['/.well-known/est/sen', enrollment('enroll')],
    ['/.well-known/est/sren', enrollment('reenroll')],
  ]);
  return handlers;
}

/** Maps an error to its CoAP answer; 5.03 carries Max-Age (RFC 9148 delayed response, digest §3.3). */
export function answerError(err: unknown, res: CoapResponse, log: Logger): void {
  let code = '5.00';
  let text = 'internal error';
  if (err instanceof Answer) {
    code = err.code;
    text = err.message;
  } else if (err instanceof BrskiError) {
    code = err.coapStatus;
    text = err.message;
    if (code === '5.03') res.setOption('Max-Age', err.retryAfter ?? 5);
  } else {
    log.error({ err }, 'CoAP handler failed');
  }
  res.code = code;
  // Diagnostic payload (RFC 7252 §5.5.2): UTF-8 text, no Content-Format.
  res.end(Buffer.from(text.slice(0, 200)));
}

/**
 * EST calls of the pledge over the (now authenticated) registrar link (digest §4): base64 DER
 * bodies both ways, whatever Content-Transfer-Encoding says (RFC 8951).
 */
import type { X509Certificate } from 'node:crypto';
import { MEDIA, bareMediaType } from '@brski/shared/media';
import { decodeBase64Body, encodeBase64Body } from '@brski/shared/est/base64-body';
import { decodeCertsOnly } from '@brski/shared/est/certs-only';
import { decodeCsrAttrs } from '@brski/shared/est/csrattrs';
import { encodeStatusTelemetry } from '@brski/shared/voucher/telemetry';
import { PledgeFailure, type PledgeFailureReason } from './errors.ts';
import type { ExchangeResponse, RegistrarLink } from './transport.ts';

export const EST_PATH = '/.well-known/est';
export const BRSKI_PATH = '/.well-known/brski';

function bodyText(res: ExchangeResponse): string {
  return res.body.toString('latin1');
}

function unexpected(reason: PledgeFailureReason, what: string, res: ExchangeResponse, origin: string): PledgeFailure {
  const text = res.body.subarray(0, 200).toString('utf8').replace(/\s+/g, ' ').trim();
  return new PledgeFailure(reason, `${what}: HTTP ${res.status}${text ? ` (${text})` : ''}`, { registrar: origin, detail: { status: res.status } });
}

/**
 * Decoded /cacerts bodies by content (bounded): every pledge of a fleet gets the same CA set, and
 * the certs-only parse was a top CPU item. Keyed by the exact body text, so nothing is assumed.
 */
const caCertsCache = new Map<string, X509Certificate[]>();

/** GET /cacerts: the domain CA set (certs-only). */
export async function fetchCaCerts(link: RegistrarLink): Promise<X509Certificate[]> {
  const res = await link.exchange({ method: 'GET', path: `${EST_PATH}/cacerts`, retryTransport: true });
  if (res.status !== 200) throw unexpected('est-cacerts-failed', 'cacerts', res, link.origin);
  try {
    const text = bodyText(res);
    const hit = caCertsCache.get(text);
    if (hit) return [...hit];
    const certs = decodeCertsOnly(decodeBase64Body(text));
    if (certs.length === 0) throw new Error('no certificates');
    if (caCertsCache.size >= 64) caCertsCache.delete(caCertsCache.keys().next().value!);
    caCertsCache.set(text, certs);
    return [...certs];
  } catch (e) {
    throw new PledgeFailure('est-cacerts-failed', `cacerts body: ${(e as Error).message}`, { cause: e, registrar: link.origin });
  }
}

/** GET /csrattrs (BRSKI: MUST). 204/404 and an empty SEQUENCE mean "no requirements". */
export async function fetchCsrAttrs(link: RegistrarLink): Promise<ReturnType<typeof decodeCsrAttrs> | undefined> {
  const res = await link.exchange({ method: 'GET', path: `${EST_PATH}/csrattrs`, retryTransport: true });
  if (res.status === 204 || res.status === 404) return undefined;
  if (res.status !== 200) throw unexpected('est-csrattrs-failed', 'csrattrs', res, link.origin);
  try {
    return decodeCsrAttrs(decodeBase64Body(bodyText(res)));
  } catch (e) {
    throw new PledgeFailure('est-csrattrs-failed', `csrattrs body: ${(e as Error).message}`, { cause: e, registrar: link.origin });
  }
}

/** POST /simpleenroll or /simplereenroll with a PKCS#10; 202 retries resend the same CSR (transport layer). */
export async function enroll(link: RegistrarLink, csrDer: Uint8Array, op: 'simpleenroll' | 'simplereenroll'): Promise<X509Certificate[]> {
  const body = Buffer.from(encodeBase64Body(csrDer), 'latin1');
  const res = await link.exchange({
    method: 'POST', path: `${EST_PATH}/${op}`, body, retryTransport: true,
    headers: { 'content-type': MEDIA.pkcs10, accept: MEDIA.pkcs7CertsOnly },
  });
  if (res.status !== 200) throw unexpected('enroll-refused', op, res, link.origin);
  const ct = bareMediaType(String(res.headers['content-type'] ?? ''));
  if (ct !== MEDIA.pkcs7) throw new PledgeFailure('protocol-error', `${op}: unexpected Content-Type ${ct || '(none)'}`, { registrar: link.origin });
  try {
    return decodeCertsOnly(decodeBase64Body(bodyText(res)));
  } catch (e) {
    throw new PledgeFailure('ldevid-invalid', `${op} body: ${(e as Error).message}`, { cause: e, registrar: link.origin });
  }
}

/** Telemetry (voucher_status / enrollstatus, digest §7.1–7.2): lowercase keys, version 1; the answer is ignored. */
export async function postStatus(link: RegistrarLink, which: 'voucher_status' | 'enrollstatus',
  status: boolean, reason?: string, reasonContext?: Record<string, unknown>): Promise<number | undefined> {
  const body = encodeStatusTelemetry({ status, ...(reason !== undefined ? { reason } : {}), ...(reasonContext ? { reasonContext } : {}) }, 'json');
  try {
    const res = await link.exchange({
      method: 'POST', path: `${BRSKI_PATH}/${which}`, body, retryTransport: true,
      headers: { 'content-type': MEDIA.json },
    });
    return res.status;
  } catch {
    return undefined; // telemetry is best effort: the pledge ignores the response (§3.1)
  }
}

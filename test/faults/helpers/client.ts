/**
 * Raw HTTPS for the suites: keep-alive agents with or without a pledge's IDevID as TLS client
 * certificate, single requests that always settle (timeout → a synthetic status 0), and valid
 * voucher-requests built the way a real pledge builds them (so mutations start from real bytes).
 */
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import type { VoucherFormat } from '@brski/shared/media';
import { buildPvr } from '../../../pledge-sim/src/pledge/voucher-check.ts';
import { manifestSource } from '../../../pledge-sim/src/fleet/sources.ts';
import type { E2ePki } from '../../e2e/helpers/stack.ts';

export interface RawResponse { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; text: string; ms: number }

export interface ClientIdentity { cert: string; key: string }

/** The IDevID (leaf + IDevID CA, as a pledge sends it) and key of PKI pledge `index`. */
export function pledgeIdentity(pki: E2ePki, index: number): ClientIdentity & { serial: string } {
  const p = pki.manifest.pledges[index];
  if (!p) throw new RangeError(`no pledge ${index}`);
  return { serial: p.serial, cert: readFileSync(p.cert, 'utf8') + readFileSync(pki.manifest.idevidCa.cert, 'utf8'), key: readFileSync(p.key, 'utf8') };
}

/**
 * A keep-alive agent. Server certificates are not verified here: these clients play attackers
 * and probes, whose only interest is what the server answers (the pledge simulator does the
 * real server authentication in the fleet runs).
 */
export function agent(identity?: ClientIdentity, maxSockets = 16): https.Agent {
  return new https.Agent({ keepAlive: true, maxSockets, rejectUnauthorized: false, minVersion: 'TLSv1.2', ...(identity ?? {}) });
}

export interface RawRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  timeoutMs?: number;
}

export function request(ag: https.Agent, origin: string, r: RawRequest): Promise<RawResponse> {
  const started = performance.now();
  return new Promise((resolve) => {
    const u = new URL(r.path, origin);
    const body = r.body === undefined ? undefined : Buffer.from(r.body as Uint8Array);
    const headers: Record<string, string> = { ...(body ? { 'content-length': String(body.length) } : {}), ...r.headers };
    let settled = false;
    const done = (res: Omit<RawResponse, 'ms'>): void => {
      if (settled) return;
      settled = true;
      resolve({ ...res, ms: performance.now() - started });
    };
    const req = https.request(u, { method: r.method ?? 'POST', agent: ag, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const b = Buffer.concat(chunks);
        done({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8') });
      });
      res.on('error', (e) => done({ status: -1, headers: {}, body: Buffer.alloc(0), text: `response error: ${e.message}` }));
    });
    req.setTimeout(r.timeoutMs ?? 20_000, () => {
      req.destroy();
      done({ status: 0, headers: {}, body: Buffer.alloc(0), text: `no answer within ${r.timeoutMs ?? 20_000} ms` });
    });
    req.on('error', (e) => done({ status: -1, headers: {}, body: Buffer.alloc(0), text: `request error: ${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}` }));
    req.end(body);
  });
}

/** A valid PVR from pledge `index` for the registrar of the PKI (proximity: its TLS certificate). */
export async function validPvr(pki: E2ePki, index: number, format: VoucherFormat): Promise<Uint8Array> {
  return (await builtPvr(pki, index, format)).bytes;
}

export async function builtPvr(pki: E2ePki, index: number, format: VoucherFormat): Promise<{ bytes: Uint8Array; nonce: Uint8Array }> {
  const se = await manifestSource(pki.manifest).secureElement(index);
  const registrarCert = new X509Certificate(readFileSync(pki.manifest.registrar.cert));
  return buildPvr({ format, serial: pki.manifest.pledges[index]!.serial, registrarCert }, se.signer(se.active('idevid')!.handle));
}

/** Runs `tasks` with at most `limit` in flight. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  }));
}

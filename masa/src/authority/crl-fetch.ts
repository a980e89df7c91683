/**
 * Fetching a CRL named by a certificate's CRL distribution point (RFC 5280 §4.2.1.13: a DER CRL
 * over HTTP, or HTTPS). The URL comes from a certificate the *requester* chose (the registrar chain
 * is only checked against its own top), so the fetch is bounded in every way: http/https only, no
 * redirects, a size cap enforced while reading, an overall timeout, and — unless allowed — no
 * loopback/private/link-local destinations, checked on the address actually connected to (custom
 * DNS lookup, so DNS rebinding cannot slip past a check done earlier). node:http rather than
 * fetch() because fetch offers no hook on the resolved address.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';

export interface CrlFetchOptions {
  timeoutMs: number;
  maxBytes: number;
  /** Allow loopback, private (RFC 1918 / ULA), link-local and CGNAT destinations (labs, tests). */
  allowPrivateAddresses: boolean;
}

export type CrlFetcher = (url: string) => Promise<Uint8Array>;

/** A fetch failure with a reason fit for logs and the refusal text (no response bodies echoed). */
export class CrlFetchError extends Error {}

const BLOCKED = new BlockList();
for (const [net, bits] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.168.0.0', 16], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) BLOCKED.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) BLOCKED.addSubnet(net, bits, 'ipv6');

export function isBlockedAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return BLOCKED.check(mapped[1]!, 'ipv4');
  const family = isIP(address);
  if (family === 0) return true; // not an address: never connect to it
  return BLOCKED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** DNS lookup that refuses to hand a blocked address to the socket. */
const guardedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    const list = addresses as LookupAddress[];
    const ok = list.filter((a) => !isBlockedAddress(a.address));
    if (ok.length === 0) {
      return callback(Object.assign(new Error(`${hostname} resolves only to private/loopback addresses`), { code: 'EBLOCKED' }), '', 0);
    }
    if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, ok);
    callback(null, ok[0]!.address, ok[0]!.family);
  });
};

export function createCrlFetcher(o: CrlFetchOptions): CrlFetcher {
  return (url) => new Promise<Uint8Array>((resolve, reject) => {
    let u: URL;
    try { u = new URL(url); } catch { return reject(new CrlFetchError(`not a URL: ${url}`)); }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return reject(new CrlFetchError(`unsupported CRL URL scheme ${u.protocol}`));
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (!o.allowPrivateAddresses && isIP(host) !== 0 && isBlockedAddress(host)) {
      return reject(new CrlFetchError(`CRL URL points to a private/loopback address (${host})`));
    }
    const mod = u.protocol === 'https:' ? https : http;
    let settled = false;
    const fail = (why: string): void => {
      clearTimeout(timer);
      if (!settled) { settled = true; reject(new CrlFetchError(why)); }
      req.destroy();
    };
    const req = mod.get(u, {
      headers: { accept: 'application/pkix-crl' }, agent: false,
      ...(o.allowPrivateAddresses ? {} : { lookup: guardedLookup }),
    }, (res) => {
      if (res.statusCode !== 200) { res.resume(); return fail(`HTTP ${res.statusCode} from ${u.origin}`); }
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > o.maxBytes) return fail(`CRL of ${declared} bytes exceeds ${o.maxBytes}`);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > o.maxBytes) fail(`CRL exceeds ${o.maxBytes} bytes`);
        else chunks.push(c);
      });
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(new Uint8Array(Buffer.concat(chunks)));
      });
      res.on('error', (e) => fail(`reading the CRL: ${e.message}`));
    });
    const timer = setTimeout(() => fail(`no CRL from ${u.origin} within ${o.timeoutMs} ms`), o.timeoutMs);
    timer.unref();
    req.on('error', (e) => fail(`fetching ${u.origin}: ${e.message}`));
  });
}

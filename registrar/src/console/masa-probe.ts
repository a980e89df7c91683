/**
 * MASA reachability for the dashboard: for every MASA the registrar talks to (configured
 * manufacturer overrides plus the MASA URLs recorded on pledges), a TLS handshake with the same
 * trust the voucher exchange uses (manufacturer `masaTlsAnchors`, else system roots; host name
 * checked), and the last voucher obtained through it. A handshake proves the MASA is up and
 * trusted; the voucher time shows it actually serves. Results are cached so that polling
 * dashboards do not hammer MASAs.
 */
import { isIP } from 'node:net';
import tls from 'node:tls';
import { masaBaseUrl } from '@brski/shared/pki/identity';
import type { Manufacturer } from '../authority/identity.ts';
import type { PledgeRecord } from '../store/types.ts';

export type Reachability = 'reachable' | 'untrusted' | 'unreachable';

export interface MasaStatus {
  url: string;
  manufacturer?: string;
  state: Reachability;
  detail: string;
  checkedAt: string;
  latencyMs?: number;
  lastVoucherAt?: string;
  /** Pledges whose last exchange with this MASA was deferred (still in `requested` with an error). */
  deferred: number;
}

const TRUST_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME|SIGNATURE/;

export interface ClientIdentity { key: string | Buffer; cert: string | Buffer }

export function handshake(url: string, anchors: string[] | undefined, timeoutMs: number, client?: ClientIdentity): Promise<{ state: Reachability; detail: string; latencyMs?: number }> {
  const u = new URL(url);
  const port = Number(u.port || 443);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = tls.connect({ host, port, servername: isIP(host) ? undefined : host, minVersion: 'TLSv1.2', rejectUnauthorized: true,
      ...(anchors ? { ca: anchors } : {}), ...(client ? { key: client.key, cert: client.cert } : {}) } as tls.ConnectionOptions);
    const done = (r: { state: Reachability; detail: string; latencyMs?: number }) => { clearTimeout(timer); socket.destroy(); resolve(r); };
    const timer = setTimeout(() => done({ state: 'unreachable', detail: `no TLS handshake within ${timeoutMs} ms` }), timeoutMs);
    socket.once('secureConnect', () => done({ state: 'reachable', detail: `TLS ${socket.getProtocol() ?? ''} handshake, certificate trusted`, latencyMs: Math.round(performance.now() - started) }));
    socket.once('error', (e: NodeJS.ErrnoException) => done(TRUST_ERRORS.test(e.code ?? '')
      ? { state: 'untrusted', detail: `TLS certificate rejected: ${e.code}` }
      : { state: 'unreachable', detail: e.code ?? e.message }));
  });
}

export class MasaProbe {
  // Promises are cached, so concurrent dashboard polls share one handshake.
  #cache = new Map<string, { at: number; r: ReturnType<typeof handshake> }>();

  constructor(private readonly o: {
    manufacturers: readonly Manufacturer[]; now: () => Date;
    /** The registrar's TLS client identity, presented as in the voucher exchange (MASAs may require it). */
    client?: ClientIdentity; ttlMs?: number; timeoutMs?: number; max?: number }) {}

  async status(pledges: readonly PledgeRecord[]): Promise<MasaStatus[]> {
    const targets = new Map<string, { manufacturer?: string; anchors?: string[] }>();
    for (const m of this.o.manufacturers) {
      if (!m.masaUrl) continue;
      try { targets.set(masaBaseUrl(m.masaUrl), { manufacturer: m.name, ...(m.masaTlsAnchors ? { anchors: m.masaTlsAnchors } : {}) }); } catch { /* config validated elsewhere */ }
    }
    const lastVoucher = new Map<string, string>();
    const deferred = new Map<string, number>();
    for (const p of pledges) {
      if (!p.masaUrl) continue;
      if (!targets.has(p.masaUrl)) {
        const m = this.o.manufacturers.find((x) => x.name === p.manufacturer);
        targets.set(p.masaUrl, { ...(p.manufacturer ? { manufacturer: p.manufacturer } : {}), ...(m?.masaTlsAnchors ? { anchors: m.masaTlsAnchors } : {}) });
      }
      if (p.voucherIssuedAt && p.voucherIssuedAt > (lastVoucher.get(p.masaUrl) ?? '')) lastVoucher.set(p.masaUrl, p.voucherIssuedAt);
      if (p.state === 'requested' && p.lastError) deferred.set(p.masaUrl, (deferred.get(p.masaUrl) ?? 0) + 1);
    }
    const list = [...targets.entries()].slice(0, this.o.max ?? 20);
    return Promise.all(list.map(async ([url, t]) => {
      const now = this.o.now().getTime();
      let c = this.#cache.get(url);
      if (!c || now - c.at > (this.o.ttlMs ?? 15_000)) {
        c = { at: now, r: handshake(url, t.anchors, this.o.timeoutMs ?? 2000, this.o.client) };
        this.#cache.set(url, c);
      }
      const r = await c.r;
      const lv = lastVoucher.get(url);
      return {
        url, ...(t.manufacturer ? { manufacturer: t.manufacturer } : {}), state: r.state, detail: r.detail, checkedAt: new Date(c.at).toISOString(),
        ...(r.latencyMs === undefined ? {} : { latencyMs: r.latencyMs }), ...(lv ? { lastVoucherAt: lv } : {}), deferred: deferred.get(url) ?? 0,
      };
    }));
  }
}

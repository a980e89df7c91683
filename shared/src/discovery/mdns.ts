/**
 * DNS-SD over mDNS (RFC 6762/6763) for BRSKI discovery (RFC 8995 §4 and Appendix B; digest §2.2,
 * §9.5): `_brski-registrar._tcp` / `_brski-proxy._tcp` (and `._udp` for CoAPS join proxies).
 * Built on bonjour-service (multicast-dns underneath); this module adds what BRSKI needs on top:
 * link scoping (announce/browse on one interface, publish only that interface's addresses) and a
 * bounded browse that returns the candidates seen in a time window.
 */
import { Bonjour, type Service } from 'bonjour-service';
import { BrskiError } from '../errors.ts';
import { onLink, resolveInterface, type LinkInterface } from './interfaces.ts';

export type BrskiServiceType = 'brski-registrar' | 'brski-proxy';
export type ServiceProtocol = 'tcp' | 'udp';

export const BRSKI_SERVICE_TYPES: readonly BrskiServiceType[] = ['brski-registrar', 'brski-proxy'];

export interface AnnounceOptions {
  type: BrskiServiceType;
  protocol: ServiceProtocol;
  port: number;
  /** DNS-SD instance name (dots are replaced by dashes by the library). */
  name: string;
  /** Interface name or IPv4 address: announce on this link only, with only its addresses. */
  interface?: string;
  txt?: Record<string, string>;
}

export interface Announcement {
  readonly fqdn: string;
  /** Sends the goodbye (TTL 0) and closes the socket. */
  stop(): Promise<void>;
}

export interface ServiceCandidate {
  type: BrskiServiceType;
  protocol: ServiceProtocol;
  name: string;
  host: string;
  port: number;
  /** Addresses to try, the source address of the answer first (it was heard on our link). */
  addresses: string[];
  txt: Record<string, string>;
}

export interface BrowseOptions {
  timeoutMs: number;
  /** Interface name or IPv4 address: query on this link and keep only answers from it. */
  interface?: string;
  /** Resolve as soon as this many distinct services were seen. */
  maxResults?: number;
  signal?: AbortSignal;
}

type MdnsLike = {
  on(ev: 'error' | 'warning', fn: (e: Error) => void): void;
};

/** One mDNS socket (optionally pinned to a link) that can publish several services. */
export class MdnsResponder {
  readonly #bonjour: Bonjour;
  readonly #iface: LinkInterface | undefined;
  readonly #services: Service[] = [];
  #closed = false;

  constructor(iface?: string, onError: (e: Error) => void = () => {}) {
    this.#iface = iface === undefined ? undefined : resolveInterface(iface);
    // multicast-dns binds to `interface` when given, which would drop multicast on Linux: bind the
    // wildcard and use the interface for membership and outgoing multicast only.
    const opts = this.#iface ? { interface: this.#iface.ipv4, bind: '0.0.0.0' } : {};
    this.#bonjour = new Bonjour(opts as never, onError);
    const mdns = (this.#bonjour as unknown as { server: { mdns: MdnsLike } }).server.mdns;
    // Without listeners, a bind failure (EADDRINUSE/EACCES) would be an unhandled 'error' event.
    mdns.on('error', onError);
    mdns.on('warning', () => { /* per-interface membership failures are expected on some links */ });
  }

  get iface(): LinkInterface | undefined { return this.#iface; }

  publish(o: Omit<AnnounceOptions, 'interface'>): Service {
    if (this.#closed) throw new BrskiError('unavailable', 'mDNS responder is closed');
    checkPort(o.port);
    const service = this.#bonjour.publish({ name: o.name, type: o.type, protocol: o.protocol, port: o.port, ...(o.txt ? { txt: o.txt } : {}) });
    const iface = this.#iface;
    if (iface) {
      // bonjour-service publishes every interface's addresses; on a multi-homed proxy that would
      // hand pledges addresses of the registrar-side link. Records are read after probing
      // (probing is on, ≥ 250 ms), so replacing the method here takes effect for the announcement.
      const original = service.records.bind(service);
      const mine = new Set(iface.addresses.map((a) => a.address));
      service.records = () => original().filter((r) => (r.type !== 'A' && r.type !== 'AAAA') || mine.has(String(r.data)));
    }
    this.#services.push(service);
    return service;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.#services.map((s) => new Promise<void>((resolve) => {
      if (!s.activated) { resolve(); return; }
      s.stop(() => resolve());
    })));
    await new Promise<void>((resolve) => this.#bonjour.destroy(() => resolve()));
  }

  /** Browser on this responder's socket (used by browseServices). */
  find(type: BrskiServiceType, protocol: ServiceProtocol) {
    return this.#bonjour.find({ type, protocol });
  }
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BrskiError('malformed', `port ${port} is not a port number`);
}

/** Announces one BRSKI service until `stop()`. */
export function announceService(opts: AnnounceOptions): Announcement {
  const responder = new MdnsResponder(opts.interface);
  const service = responder.publish(opts);
  return { fqdn: service.fqdn, stop: () => responder.close() };
}

/** Browses one service type for `timeoutMs` and returns what answered (first answer first). */
export function browseServices(type: BrskiServiceType, protocol: ServiceProtocol, opts: BrowseOptions): Promise<ServiceCandidate[]> {
  return browseMany([{ type, protocol }], opts);
}

/** Browses several service types on one socket; candidates in the order they were first heard. */
export async function browseMany(kinds: ReadonlyArray<{ type: BrskiServiceType; protocol: ServiceProtocol }>,
  opts: BrowseOptions): Promise<ServiceCandidate[]> {
  if (!(opts.timeoutMs > 0)) throw new BrskiError('malformed', 'browse timeoutMs must be positive');
  const responder = new MdnsResponder(opts.interface);
  const iface = responder.iface;
  const found = new Map<string, ServiceCandidate>();
  const browsers = kinds.map((k) => ({ k, b: responder.find(k.type, k.protocol) }));
  let finish!: () => void;
  const done = new Promise<void>((resolve) => { finish = resolve; });
  const add = (k: { type: BrskiServiceType; protocol: ServiceProtocol }, s: Service): void => {
    const referer = s.referer?.address;
    // On a multi-homed host the socket hears every link; keep answers from the chosen one.
    if (iface && (!referer || !onLink(iface, referer))) return;
    const key = `${k.type}/${k.protocol}/${s.fqdn}/${referer ?? ''}`;
    const addresses = [...new Set([...(referer ? [referer] : []), ...(s.addresses ?? [])])];
    const candidate: ServiceCandidate = { type: k.type, protocol: k.protocol, name: s.name, host: s.host, port: s.port, addresses, txt: stringTxt(s.txt) };
    found.set(key, candidate); // a later answer (srv-update) replaces the earlier one in place
    if (opts.maxResults !== undefined && found.size >= opts.maxResults) finish();
  };
  for (const { k, b } of browsers) {
    b.on('up', (s) => add(k, s));
    b.on('srv-update', (s) => add(k, s));
    b.on('down', (s) => { for (const [key, c] of found) if (c.type === k.type && c.name === s.name) found.delete(key); });
  }
  // mDNS queries can be lost: re-query with doubling intervals (RFC 6762 §5.2), 1 s, 2 s, 4 s …
  let delay = 1000;
  let requery: NodeJS.Timeout;
  const again = (): void => {
    requery = setTimeout(() => { for (const { b } of browsers) b.update(); delay *= 2; again(); }, delay);
  };
  again();
  const timer = setTimeout(finish, opts.timeoutMs);
  const onAbort = (): void => finish();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await done;
  } finally {
    clearTimeout(timer);
    clearTimeout(requery!);
    opts.signal?.removeEventListener('abort', onAbort);
    for (const { b } of browsers) b.stop();
    await responder.close();
  }
  return [...found.values()];
}

function stringTxt(txt: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (txt && typeof txt === 'object') {
    for (const [k, v] of Object.entries(txt as Record<string, unknown>)) out[k] = Buffer.isBuffer(v) ? v.toString('utf8') : String(v);
  }
  return out;
}

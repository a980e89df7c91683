/**
 * Where the join proxy relays to: a configured registrar, or one discovered by mDNS on the
 * proxy's registrar-side link (`_brski-registrar._tcp` / `._udp`, RFC 8995 §4.3). A discovered
 * target that stops answering is forgotten and discovery runs again on the next connection.
 */
import { BrskiError } from '@brski/shared/errors';
import { browseServices, type ServiceProtocol } from '@brski/shared/discovery/mdns';
import { isLinkLocalV6 } from '@brski/shared/discovery/interfaces';

export interface Target { host: string; port: number }

export interface DiscoverySettings {
  /** Registrar-side interface (name or IPv4 address); default every interface. */
  interface?: string;
  /** Browse window per attempt, ms (default 3000). */
  timeoutMs?: number;
}

export class RegistrarLocator {
  readonly #static: Target | undefined;
  readonly #discovery: DiscoverySettings;
  readonly #protocol: ServiceProtocol;
  #cached: Target | undefined;
  #inflight: Promise<Target> | undefined;

  constructor(opts: { target?: Target; discovery?: DiscoverySettings; protocol: ServiceProtocol }) {
    this.#static = opts.target;
    this.#discovery = opts.discovery ?? {};
    this.#protocol = opts.protocol;
  }

  get current(): Target | undefined { return this.#static ?? this.#cached; }

  async resolve(): Promise<Target> {
    if (this.#static) return this.#static;
    if (this.#cached) return this.#cached;
    // One browse at a time however many pledges connect meanwhile.
    this.#inflight ??= this.#discover().finally(() => { this.#inflight = undefined; });
    return this.#inflight;
  }

  /** The target failed: forget it (a static target stays). */
  invalidate(t: Target): void {
    if (this.#cached && this.#cached.host === t.host && this.#cached.port === t.port) this.#cached = undefined;
  }

  async #discover(): Promise<Target> {
    const found = await browseServices('brski-registrar', this.#protocol, {
      timeoutMs: this.#discovery.timeoutMs ?? 3000, maxResults: 1,
      ...(this.#discovery.interface ? { interface: this.#discovery.interface } : {}),
    });
    for (const c of found) {
      const host = c.addresses.find((a) => !isLinkLocalV6(a));
      if (host) return (this.#cached = { host, port: c.port });
    }
    throw new BrskiError('upstream-unavailable', `no _brski-registrar._${this.#protocol} answered on ${this.#discovery.interface ?? 'any interface'}`);
  }
}

/**
 * What a registrar calls at start to be discoverable (RFC 8995 §4.3, Appendix B; digest §2.2,
 * §9.5): `_brski-registrar._tcp` for join proxies, `_brski-registrar._udp` when it serves CoAPS,
 * and — for a registrar on the pledges' own link, which "SHOULD advertise itself like a join
 * proxy" — optionally `_brski-proxy._tcp` / `._udp` as well.
 */
import { MdnsResponder } from './mdns.ts';

export interface RegistrarAnnouncementOptions {
  /** Pledge-facing HTTPS port. */
  port: number;
  /** CoAPS (DTLS) port, when the registrar serves cBRSKI. */
  coapsPort?: number;
  /** DNS-SD instance name, e.g. the registrar's domain. */
  name: string;
  /** Announce on this interface only (name or IPv4 address); default: every interface. */
  interface?: string;
  /** Also announce as a join proxy (registrar one hop from the pledges). */
  asProxy?: boolean;
  onError?: (e: Error) => void;
}

export interface RegistrarAnnouncement {
  /** Service FQDNs announced. */
  readonly services: string[];
  stop(): Promise<void>;
}

export function startRegistrarAnnouncement(opts: RegistrarAnnouncementOptions): RegistrarAnnouncement {
  const responder = new MdnsResponder(opts.interface, opts.onError);
  const services: string[] = [];
  const types = opts.asProxy ? (['brski-registrar', 'brski-proxy'] as const) : (['brski-registrar'] as const);
  try {
    for (const type of types) {
      services.push(responder.publish({ type, protocol: 'tcp', port: opts.port, name: opts.name }).fqdn);
      if (opts.coapsPort !== undefined) services.push(responder.publish({ type, protocol: 'udp', port: opts.coapsPort, name: opts.name }).fqdn);
    }
  } catch (e) {
    void responder.close();
    throw e;
  }
  return { services, stop: () => responder.close() };
}

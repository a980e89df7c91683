/**
 * `createJoinProxy`: the BRSKI join proxy process (RFC 8995 §4; digest §2.2, §9.5). Pledge side:
 * a TCP circuit relay (and optionally a stateful DTLS relay), announced as `_brski-proxy._tcp`
 * (`._udp`) by mDNS on the pledge link. Registrar side: a configured address or one found by
 * browsing `_brski-registrar._tcp` (`._udp`) on the registrar link.
 */
import { MdnsResponder } from '@brski/shared/discovery/mdns';
import { BrskiError } from '@brski/shared/errors';
import { CircuitRelay, type CircuitEvent, type CircuitStats, type Direction } from './circuit.ts';
import { UdpRelay, type UdpRelayEvent, type UdpRelayStats } from './udp-relay.ts';
import { RegistrarLocator, type DiscoverySettings, type Target } from './upstream.ts';

export interface JoinProxyConfig {
  /** Pledge-facing TCP listener (port 0: any free port). */
  listen: { host: string; port: number };
  /** Registrar HTTPS address; absent: discovered by mDNS (`discovery`). */
  registrar?: Target;
  /** Optional CoAPS relay: pledge-facing UDP listener and the registrar's CoAPS address (else discovered). */
  coaps?: { listen: { host: string; port: number }; registrar?: Target };
  discovery?: DiscoverySettings;
  /** Announce on the pledge link; `false` to stay silent (pledges configured by address). */
  announce?: { name: string; interface?: string } | false;
  idleTimeoutMs?: number;
  udpIdleTimeoutMs?: number;
  maxConnections?: number;
  maxSessions?: number;
  tap?: (dir: Direction, bytes: Buffer) => void;
  onEvent?: (e: CircuitEvent | UdpRelayEvent) => void;
}

export interface JoinProxy {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly port: number;
  readonly coapsPort: number | undefined;
  readonly announced: string[];
  stats(): { tcp: CircuitStats; udp: UdpRelayStats | undefined; registrar: Target | undefined };
}

export function createJoinProxy(cfg: JoinProxyConfig): JoinProxy {
  if (!cfg.registrar && cfg.discovery === undefined) {
    throw new BrskiError('malformed', 'join proxy: give a registrar address or enable discovery');
  }
  const tcpUpstream = new RegistrarLocator({ protocol: 'tcp', ...(cfg.registrar ? { target: cfg.registrar } : {}), ...(cfg.discovery ? { discovery: cfg.discovery } : {}) });
  const tcp = new CircuitRelay({
    listen: cfg.listen, upstream: tcpUpstream,
    ...(cfg.idleTimeoutMs ? { idleTimeoutMs: cfg.idleTimeoutMs } : {}),
    ...(cfg.maxConnections ? { maxConnections: cfg.maxConnections } : {}),
    ...(cfg.tap ? { tap: cfg.tap } : {}),
    ...(cfg.onEvent ? { onEvent: cfg.onEvent } : {}),
  });
  const udp = cfg.coaps ? new UdpRelay({
    listen: cfg.coaps.listen,
    upstream: new RegistrarLocator({ protocol: 'udp', ...(cfg.coaps.registrar ? { target: cfg.coaps.registrar } : {}), ...(cfg.discovery ? { discovery: cfg.discovery } : {}) }),
    ...(cfg.udpIdleTimeoutMs ? { idleTimeoutMs: cfg.udpIdleTimeoutMs } : {}),
    ...(cfg.maxSessions ? { maxSessions: cfg.maxSessions } : {}),
    ...(cfg.onEvent ? { onEvent: cfg.onEvent } : {}),
  }) : undefined;
  let responder: MdnsResponder | undefined;
  const announced: string[] = [];

  return {
    get port() { return tcp.port; },
    get coapsPort() { return udp?.port; },
    announced,
    stats: () => ({ tcp: tcp.stats, udp: udp?.stats, registrar: tcpUpstream.current }),
    async start() {
      await tcp.listen();
      if (udp) await udp.listen();
      if (cfg.announce) {
        responder = new MdnsResponder(cfg.announce.interface);
        announced.push(responder.publish({ type: 'brski-proxy', protocol: 'tcp', port: tcp.port, name: cfg.announce.name }).fqdn);
        if (udp) announced.push(responder.publish({ type: 'brski-proxy', protocol: 'udp', port: udp.port, name: cfg.announce.name }).fqdn);
      }
    },
    async stop() {
      await responder?.close();
      await Promise.all([tcp.close(), udp?.close()]);
    },
  };
}

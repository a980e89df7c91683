/**
 * Pledge-side discovery (RFC 8995 §4.1 and Appendix B; digest §2.2, §9.5): browse for join
 * proxies and registrars on the pledge's link and turn the answers into registrar origins the
 * pledge tries in order. The order is a preference, not a trust decision: whoever answers mDNS
 * is untrusted until the voucher's pinned-domain-cert validates its TLS chain.
 */
import { isIPv6 } from 'node:net';
import { browseMany, type BrskiServiceType, type ServiceCandidate } from './mdns.ts';
import { isLinkLocalV6 } from './interfaces.ts';

export interface DiscoverOptions {
  timeoutMs: number;
  /** Interface name or IPv4 address of the pledge's link; default: every interface. */
  interface?: string;
  /** 'https' browses `._tcp` (BRSKI), 'coaps' browses `._udp` (cBRSKI join proxies). */
  transport?: 'https' | 'coaps';
  /**
   * Which kind is tried first. Default 'registrar': a registrar answering on the pledge's own
   * link is one hop away and needs no relay; proxies follow. Within a kind, first heard first.
   */
  prefer?: 'registrar' | 'proxy';
  signal?: AbortSignal;
}

/** Origins (`https://10.0.0.1:8443`, `coaps://[2001:db8::1]:5684`) for the candidates, in order, without duplicates. */
export function candidateUrls(candidates: readonly ServiceCandidate[], transport: 'https' | 'coaps' = 'https',
  prefer: 'registrar' | 'proxy' = 'registrar'): string[] {
  const first: BrskiServiceType = prefer === 'registrar' ? 'brski-registrar' : 'brski-proxy';
  const ordered = [...candidates.filter((c) => c.type === first), ...candidates.filter((c) => c.type !== first)];
  const urls = new Set<string>();
  for (const c of ordered) {
    for (const a of c.addresses) {
      // A link-local IPv6 address needs a zone id, which a URL origin cannot carry.
      if (isLinkLocalV6(a)) continue;
      urls.add(`${transport}://${isIPv6(a) ? `[${a}]` : a}:${c.port}`);
    }
  }
  return [...urls];
}

/** Browses `_brski-registrar` and `_brski-proxy` for `timeoutMs`; returns origins in the order to try. */
export async function discoverRegistrarCandidates(opts: DiscoverOptions): Promise<string[]> {
  const protocol = opts.transport === 'coaps' ? 'udp' : 'tcp';
  const found = await browseMany([{ type: 'brski-registrar', protocol }, { type: 'brski-proxy', protocol }], {
    timeoutMs: opts.timeoutMs,
    ...(opts.interface ? { interface: opts.interface } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return candidateUrls(found, opts.transport ?? 'https', opts.prefer ?? 'registrar');
}

/**
 * Network-interface helpers for link-scoped discovery: mDNS is per link, so a multi-homed host
 * (a join proxy: pledge link + registrar link) must announce and browse on a chosen interface
 * and publish only that interface's addresses.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { BrskiError } from '../errors.ts';

export interface LinkInterface {
  /** Interface name (eth0, veth-…). */
  name: string;
  /** IPv4 address used for the multicast socket (multicast-dns speaks IPv4 mDNS). */
  ipv4: string;
  /** Every address of the interface (IPv4 and IPv6), as published in A/AAAA records. */
  addresses: NetworkInterfaceInfo[];
}

/**
 * Resolves an interface given by name or by one of its IPv4 addresses. Throws `unavailable`
 * when it does not exist or has no IPv4 address (mDNS over IPv4 needs one).
 */
export function resolveInterface(spec: string): LinkInterface {
  const all = networkInterfaces();
  for (const [name, infos] of Object.entries(all)) {
    if (!infos) continue;
    if (name !== spec && !infos.some((i) => i.address === spec)) continue;
    const v4 = infos.find((i) => i.family === 'IPv4');
    if (!v4) throw new BrskiError('unavailable', `interface ${name} has no IPv4 address for mDNS`);
    return { name, ipv4: v4.address, addresses: infos };
  }
  throw new BrskiError('unavailable', `no network interface named or addressed ${JSON.stringify(spec)}`);
}

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
}

/** True when `address` is on one of the interface's IPv4 subnets or is one of its addresses. */
export function onLink(iface: LinkInterface, address: string): boolean {
  const bare = address.replace(/^::ffff:/, '');
  if (isIPv4(bare)) {
    const a = ipv4ToInt(bare);
    return iface.addresses.some((i) => {
      if (i.family !== 'IPv4' || !i.cidr) return false;
      const bits = Number(i.cidr.split('/')[1]);
      const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
      return ((ipv4ToInt(i.address) & mask) >>> 0) === ((a & mask) >>> 0);
    });
  }
  // IPv6 responses carry link-local sources; the scope id says which link.
  if (isIPv6(bare.split('%')[0]!)) return bare.endsWith(`%${iface.name}`) || iface.addresses.some((i) => i.address === bare);
  return false;
}

/** IPv6 link-local addresses cannot be written in a URL origin (no zone id in WHATWG URLs). */
export function isLinkLocalV6(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

/**
 * `brski proxy`: a BRSKI join proxy (RFC 8995 §4). Relays pledge TLS connections to the registrar
 * as a circuit proxy (no TLS termination) and, with --coaps-listen, DTLS datagrams statefully;
 * announces `_brski-proxy._tcp` (`._udp`) by mDNS on the pledge link and, without --registrar,
 * finds the registrar by browsing `_brski-registrar._tcp` (`._udp`) on the registrar link.
 */
import type { Command } from 'commander';
import { createJoinProxy } from '../../join-proxy/src/proxy.ts';
import type { Target } from '../../join-proxy/src/upstream.ts';

interface ProxyCliOptions {
  listen: string;
  registrar?: string;
  coapsListen?: string;
  coapsRegistrar?: string;
  pledgeInterface?: string;
  registrarInterface?: string;
  name: string;
  announce: boolean;
  discoveryTimeout: string;
  idleTimeout: string;
  maxConnections: string;
  json?: boolean;
}

/** host:port, [v6]:port → Target. */
export function parseHostPort(v: string, what: string): Target {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(v.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`${what}: expected host:port or [v6]:port, got ${JSON.stringify(v)}`);
  return { host: (m[1] ?? m[2])!, port };
}

export function register(program: Command): void {
  program.command('proxy')
    .description('run a BRSKI join proxy: TLS circuit relay (+ stateful DTLS relay), announced by mDNS')
    .option('--listen <host:port>', 'pledge-facing TCP listener', '0.0.0.0:4443')
    .option('--registrar <host:port>', 'registrar HTTPS address (default: discover _brski-registrar._tcp)')
    .option('--coaps-listen <host:port>', 'pledge-facing UDP listener for CoAPS/DTLS (enables the DTLS relay)')
    .option('--coaps-registrar <host:port>', 'registrar CoAPS address (default: discover _brski-registrar._udp)')
    .option('--pledge-interface <if>', 'announce on this interface only (name or IPv4 address)')
    .option('--registrar-interface <if>', 'discover the registrar on this interface only')
    .option('--name <instance>', 'DNS-SD instance name', 'brski-join-proxy')
    .option('--no-announce', 'do not announce _brski-proxy by mDNS')
    .option('--discovery-timeout <ms>', 'registrar browse window', '3000')
    .option('--idle-timeout <ms>', 'close a silent circuit after this long', '120000')
    .option('--max-connections <n>', 'concurrent circuits', '1024')
    .option('--json', 'log events as JSON lines')
    .action(async (o: ProxyCliOptions) => {
      const num = (v: string, what: string): number => {
        const n = Number(v);
        if (!Number.isInteger(n) || n <= 0) throw new Error(`${what} must be a positive integer`);
        return n;
      };
      const log = (line: Record<string, unknown>): void => {
        process.stdout.write(o.json ? `${JSON.stringify({ time: new Date().toISOString(), ...line })}\n`
          : `${Object.entries(line).map(([k, v]) => `${k}=${String(v)}`).join(' ')}\n`);
      };
      let proxy;
      try {
        proxy = createJoinProxy({
          listen: parseHostPort(o.listen, '--listen'),
          ...(o.registrar ? { registrar: parseHostPort(o.registrar, '--registrar') } : {}),
          ...(o.coapsListen ? { coaps: { listen: parseHostPort(o.coapsListen, '--coaps-listen'),
            ...(o.coapsRegistrar ? { registrar: parseHostPort(o.coapsRegistrar, '--coaps-registrar') } : {}) } } : {}),
          ...((!o.registrar || (o.coapsListen && !o.coapsRegistrar)) ? { discovery: {
            timeoutMs: num(o.discoveryTimeout, '--discovery-timeout'),
            ...(o.registrarInterface ? { interface: o.registrarInterface } : {}),
          } } : {}),
          announce: o.announce ? { name: o.name, ...(o.pledgeInterface ? { interface: o.pledgeInterface } : {}) } : false,
          idleTimeoutMs: num(o.idleTimeout, '--idle-timeout'),
          maxConnections: num(o.maxConnections, '--max-connections'),
          onEvent: (e) => log({ event: e.kind, pledge: e.pledge, ...('registrar' in e && e.registrar ? { registrar: e.registrar } : {}), ...(e.detail ? { detail: e.detail } : {}) }),
        });
        await proxy.start();
      } catch (err) {
        process.stderr.write(`brski proxy: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = 1;
        await proxy?.stop().catch(() => {});
        return;
      }
      const p = proxy;
      log({ event: 'ready', port: p.port, ...(p.coapsPort ? { coapsPort: p.coapsPort } : {}), registrar: o.registrar ?? 'mdns', announced: p.announced.join(',') || 'none' });
      const stop = (signal: string): void => {
        log({ event: 'stopping', signal, ...p.stats().tcp.bytes });
        p.stop().then(() => process.exit(0), () => process.exit(1));
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
}

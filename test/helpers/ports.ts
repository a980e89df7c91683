/** A TCP port that was free a moment ago (bind to 0, read, close). */
import { createServer } from 'node:net';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/** A UDP port that was free a moment ago (same caveat as freePort: another process may take it before you bind). */
export function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  return import('node:dgram').then(({ createSocket }) => new Promise<number>((resolve, reject) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.once('error', reject);
    s.bind(0, host, () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  }));
}

/**
 * Resolves once something has bound the UDP port: our own bind then fails with EADDRINUSE. A
 * service's readiness probe (its HTTPS port) can come before its CoAPS listener; this waits for the
 * listener without opening a DTLS session (which a test counting sessions would see).
 */
export async function waitUdpBound(port: number, host = '127.0.0.1', timeoutMs = 30_000): Promise<void> {
  const { createSocket } = await import('node:dgram');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const bound = await new Promise<boolean>((resolve) => {
      const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      s.once('error', (e: NodeJS.ErrnoException) => { s.close(); resolve(e.code === 'EADDRINUSE'); });
      s.bind(port, host, () => s.close(() => resolve(false)));
    });
    if (bound) return;
    if (Date.now() > deadline) throw new Error(`nothing bound UDP ${host}:${port} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

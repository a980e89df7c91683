/**
 * A TCP proxy that a test can break on purpose: `cut()` drops every connection and refuses new
 * ones (a network partition as the client sees it: resets), `heal()` restores it, and
 * `delayMs` holds every chunk that long in both directions (a slow, far-away peer).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class TcpProxy {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  #cut = false;
  /** Added latency per chunk, both directions. */
  delayMs = 0;
  port = 0;
  /** Connections accepted so far (cut ones included). */
  connections = 0;

  constructor(readonly targetHost: string, public targetPort: number) {}

  async start(port = 0): Promise<number> {
    const server = createServer((client) => this.#accept(client));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    return this.port;
  }

  #accept(client: Socket): void {
    this.connections++;
    if (this.#cut) { client.destroy(); return; }
    const upstream = connect({ host: this.targetHost, port: this.targetPort });
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
      s.on('error', () => undefined); // a reset on one side just closes the pair
    }
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    this.#pipe(client, upstream);
    this.#pipe(upstream, client);
  }

  /** Forwards with the configured delay, preserving order (each chunk waits for the previous). */
  #pipe(from: Socket, to: Socket): void {
    let chain = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      const delay = this.delayMs;
      if (delay <= 0) { if (!to.destroyed) to.write(chunk); return; }
      from.pause();
      chain = chain.then(() => new Promise<void>((r) => setTimeout(r, delay))).then(() => {
        if (!to.destroyed) to.write(chunk);
        from.resume();
      });
    });
    from.once('end', () => { void chain.then(() => to.end()); });
  }

  /** Drops every open connection (RST) and refuses new ones until heal(). */
  cut(): void {
    this.#cut = true;
    for (const s of this.#sockets) s.resetAndDestroy();
    this.#sockets.clear();
  }

  heal(): void { this.#cut = false; }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
  }
}

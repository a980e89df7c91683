/** One service (test/cluster/service-main.ts) in its own Node process, with its output kept for failure messages. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');
const MAIN = join(ROOT, 'test/cluster/service-main.ts');

export interface Ready { port: number; store: string }

export class ServiceProcess {
  #child: ChildProcess | undefined;
  readonly output: string[] = [];

  constructor(readonly kind: 'masa' | 'registrar', readonly config: string, readonly env: Record<string, string> = {}) {}

  start(timeoutMs = 60_000): Promise<Ready> {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, this.kind, this.config], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.env },
    });
    this.#child = child;
    return new Promise((ok, fail) => {
      const timer = setTimeout(() => fail(new Error(`${this.kind} did not start in ${timeoutMs} ms:\n${this.log()}`)), timeoutMs);
      let buf = '';
      child.stdout!.on('data', (d: Buffer) => {
        const s = d.toString();
        this.output.push(s);
        buf += s;
        const m = /\{"ready":true,[^\n]*\}/.exec(buf);
        if (m) {
          clearTimeout(timer);
          const r = JSON.parse(m[0]) as Ready;
          ok({ port: r.port, store: r.store });
        }
      });
      child.stderr!.on('data', (d: Buffer) => this.output.push(d.toString()));
      child.once('exit', (code, sig) => { clearTimeout(timer); fail(new Error(`${this.kind} exited (${code ?? sig}):\n${this.log()}`)); });
    });
  }

  get pid(): number | undefined { return this.#child?.pid; }

  get running(): boolean {
    const c = this.#child;
    return !!c && c.exitCode === null && c.signalCode === null;
  }

  /** Last few KiB of output (logs are JSON lines; enough to see why a start failed). */
  log(): string { return this.output.join('').slice(-4000); }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (!child || !this.running) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
}

/**
 * One service (MASA or registrar) in its own Node process: `brski masa|registrar --config <file>`,
 * ready when its (fixed) listen port accepts connections. Unlike the e2e wrapper it exposes the
 * pid (peak RSS from /proc, SIGKILL) and keeps the JSON log lines so tests can look for alerts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

export const ROOT = resolve(import.meta.dirname, '../../..');
const BRSKI = join(ROOT, 'bin/brski.mjs');

function accepts(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); r(true); });
    s.once('error', () => r(false));
  });
}
const MAX_LINES = 50_000;

export interface MemoryFigures { peakRssMiB: number; rssMiB: number }

/** VmHWM (peak resident set) and VmRSS of a process, in MiB, from /proc/<pid>/status. */
export function memoryOf(pid: number): MemoryFigures {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { peakRssMiB: Math.round(kib('VmHWM') / 102.4) / 10, rssMiB: Math.round(kib('VmRSS') / 102.4) / 10 };
}

export class ServiceProc {
  #child: ChildProcess | undefined;
  /** Log lines (pino JSON or plain stderr text) of every run, oldest first. */
  readonly lines: string[] = [];
  port = 0;
  starts = 0;

  constructor(readonly kind: 'masa' | 'registrar', readonly config: string) {}

  get pid(): number | undefined { return this.#child?.pid; }
  get running(): boolean { const c = this.#child; return !!c && c.exitCode === null && c.signalCode === null; }

  #push(text: string): void {
    for (const l of text.split('\n')) if (l.trim()) this.lines.push(l);
    if (this.lines.length > MAX_LINES) this.lines.splice(0, this.lines.length - MAX_LINES);
  }

  async start(timeoutMs = 60_000): Promise<number> {
    const port = (parse(readFileSync(this.config, 'utf8')) as { listen: { port: number } }).listen.port;
    const child = spawn(process.execPath, [BRSKI, this.kind, '--config', this.config], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    this.starts++;
    let partial = '';
    child.stdout!.on('data', (d: Buffer) => {
      const text = partial + d.toString();
      const cut = text.lastIndexOf('\n');
      partial = cut < 0 ? text : text.slice(cut + 1);
      if (cut >= 0) this.#push(text.slice(0, cut));
    });
    child.stderr!.on('data', (d: Buffer) => this.#push(d.toString()));
    let exited: string | undefined;
    child.once('exit', (code, signal) => { exited = String(code ?? signal); });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exited !== undefined) throw new Error(`${this.kind} exited (${exited}) before ready:\n${this.tail()}`);
      if (await accepts(port)) { this.port = port; return port; }
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    throw new Error(`${this.kind} did not listen on ${port} within ${timeoutMs} ms:\n${this.tail()}`);
  }

  /** SIGTERM (graceful) by default; SIGKILL for a crash. Resolves when the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  }

  memory(): MemoryFigures {
    if (!this.pid || !this.running) throw new Error(`${this.kind} is not running`);
    return memoryOf(this.pid);
  }

  /** Parsed JSON log entries (non-JSON lines skipped). */
  logs(): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = [];
    for (const l of this.lines) {
      if (!l.startsWith('{')) continue;
      try { out.push(JSON.parse(l) as Record<string, unknown>); } catch { /* partial line */ }
    }
    return out;
  }

  tail(n = 40): string { return this.lines.slice(-n).join('\n'); }
}

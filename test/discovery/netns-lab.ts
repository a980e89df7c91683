/**
 * Network namespaces for the discovery test: named with a random suffix, joined by veth pairs
 * with multicast on, and always deleted (afterAll, and at process exit as a backstop). Processes
 * run inside a namespace with `ip netns exec` and are stopped by pid before it is deleted.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Why namespaces cannot be used here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `not Linux (${process.platform})`;
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not running as root';
  const probe = `brski-probe-${randomBytes(3).toString('hex')}`;
  try {
    ip('netns', 'add', probe);
  } catch (e) {
    return `ip netns add failed: ${String((e as { stderr?: string }).stderr ?? e).trim()}`;
  } finally {
    try { ip('netns', 'del', probe); } catch { /* was not created */ }
  }
  return undefined;
}

export interface Proc {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first stdout line (parsed JSON) matching `pred`; rejects on exit or timeout. */
  waitFor(pred: (o: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
  stderr(): string;
}

export class Lab {
  readonly suffix = randomBytes(3).toString('hex');
  readonly namespaces: string[] = [];
  readonly procs: Proc[] = [];
  readonly #backstop = (): void => this.destroySync();

  constructor() { process.once('exit', this.#backstop); }

  ns(role: string): string {
    const name = `brski-${role}-${this.suffix}`;
    ip('netns', 'add', name);
    this.namespaces.push(name);
    ip('-n', name, 'link', 'set', 'lo', 'up');
    return name;
  }

  /** veth pair a(in nsA, addrA) ↔ b(in nsB, addrB), multicast on, up. */
  link(nsA: string, ifA: string, addrA: string, nsB: string, ifB: string, addrB: string): void {
    ip('link', 'add', `${ifA}`, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB);
    for (const [ns, dev, addr] of [[nsA, ifA, addrA], [nsB, ifB, addrB]] as const) {
      ip('-n', ns, 'addr', 'add', addr, 'dev', dev);
      ip('-n', ns, 'link', 'set', 'dev', dev, 'multicast', 'on');
      ip('-n', ns, 'link', 'set', 'dev', dev, 'up');
    }
  }

  /** Runs `node --import tsx <script> …args` inside `ns` (cwd: repository root). */
  run(ns: string, script: string, args: string[], cwd: string): Proc {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', script, ...args],
      { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    const lines: string[] = [];
    const err: string[] = [];
    const waiters: Array<() => void> = [];
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
      for (const w of waiters.slice()) w();
    });
    child.stderr!.on('data', (d: Buffer) => { err.push(d.toString()); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => { for (const w of waiters.slice()) w(); resolve(code); }));
    const proc: Proc = {
      child, lines, exited, stderr: () => err.join('').slice(-4000),
      waitFor(pred, timeoutMs) {
        return new Promise((resolve, reject) => {
          const check = (): void => {
            for (const l of lines) {
              let o: Record<string, unknown>;
              try { o = JSON.parse(l) as Record<string, unknown>; } catch { continue; }
              if (pred(o)) { done(); resolve(o); return; }
            }
            if (child.exitCode !== null || child.signalCode !== null) {
              done();
              reject(new Error(`${script} exited (${child.exitCode ?? child.signalCode}) before the expected line; stderr: ${proc.stderr()}\nstdout: ${lines.join('\n')}`));
            }
          };
          const timer = setTimeout(() => { done(); reject(new Error(`${script}: no expected line within ${timeoutMs} ms; stderr: ${proc.stderr()}\nstdout: ${lines.join('\n')}`)); }, timeoutMs);
          const done = (): void => { clearTimeout(timer); const k = waiters.indexOf(check); if (k >= 0) waiters.splice(k, 1); };
          waiters.push(check);
          check();
        });
      },
    };
    this.procs.push(proc);
    return proc;
  }

  /** Stops every process (SIGTERM, then SIGKILL) and deletes the namespaces. */
  async destroy(): Promise<void> {
    await Promise.all(this.procs.map(async (p) => {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return;
      p.child.kill('SIGTERM');
      const t = setTimeout(() => p.child.kill('SIGKILL'), 3000);
      await p.exited;
      clearTimeout(t);
    }));
    this.destroySync();
  }

  destroySync(): void {
    for (const p of this.procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    for (const ns of this.namespaces.splice(0)) {
      try { ip('netns', 'del', ns); } catch { /* already gone */ }
    }
    process.off('exit', this.#backstop);
  }
}

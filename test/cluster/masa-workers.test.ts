/**
 * `brski masa` with listen.workers = 2 (shared/src/process/cluster.ts): a node:cluster primary and
 * two worker processes on one port, state in Redis. Run as operators run it (bin/brski.mjs in its
 * own process tree, JSON log lines on stdout into a file), checked from the outside only:
 *  - both workers get connections (each request carries an X-Request-Id; the worker's "request"
 *    log line echoes it as reqId next to its pid), every voucher request answers 200, and a
 *    replayed RVR is refused by whichever worker it lands on (nonce ledger in Redis);
 *  - GET /metrics on either worker is the cluster-wide sum (masa_vouchers_issued_total);
 *  - a SIGKILLed worker is replaced and the port keeps serving, and the aggregate counters keep
 *    what the dead worker had counted (no drop that Prometheus would read as a reset); so are both
 *    workers when they die at once;
 *  - SIGTERM stops the whole tree with exit code 0;
 *  - the sixth worker death within a minute makes the primary give up with exit code 1;
 *  - listen.workers / --workers > 1 without the Redis store is refused at start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { TlsClient, type Reply } from '../../masa/test/helpers/client.ts';
import { buildPvr, buildRvr, makePki, makePledge, writeMasaFiles, type Pledge, type TestPki } from '../../masa/test/helpers/pki.ts';
import { freePort } from '../helpers/ports.ts';
import { startRedis, type RedisHandle } from '../helpers/redis.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { ROOT } from './processes.ts';

const BRSKI = join(ROOT, 'bin/brski.mjs');
const FORMAT = 'cms' as const;
const CONTENT_TYPE = VOUCHER_MEDIA_TYPE[FORMAT];
const VOUCHER_PATH = '/.well-known/brski/requestvoucher';
const ISSUED_METRIC = 'masa_vouchers_issued_total'; // masa/src/authority/authority.ts
const DEVICES = 8;
const FIRST_BATCH = 40;
const CONNECTIONS = 8; // FIRST_BATCH requests spread over this many separate keep-alive connections

interface LogLine { msg?: string; pid?: number; reqId?: string; status?: number; path?: string; worker?: number; [k: string]: unknown }

/** `brski masa --config …` in its own process; stdout (JSON lines of the primary and every worker) goes to a file. */
class MasaProcess {
  readonly child: ChildProcess;
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;

  constructor(readonly logFile: string, args: string[]) {
    this.child = spawn(process.execPath, [BRSKI, 'masa', ...args],
      { cwd: ROOT, stdio: ['ignore', openSync(logFile, 'w'), 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
  }

  get running(): boolean { return this.child.exitCode === null && this.child.signalCode === null; }

  /** Parsed log lines so far (a line still being written is skipped). */
  lines(): LogLine[] {
    const out: LogLine[] = [];
    for (const l of readFileSync(this.logFile, 'utf8').split('\n')) {
      if (!l.trim()) continue;
      try { out.push(JSON.parse(l) as LogLine); } catch { /* partial line */ }
    }
    return out;
  }

  tail(): string { return `stderr: ${this.stderr.slice(-2000)}\nlog: ${readFileSync(this.logFile, 'utf8').slice(-3000)}`; }

  async waitFor<T>(what: string, probe: (lines: LogLine[]) => T | undefined | false, ms = 20_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = probe(this.lines());
      if (v !== undefined && v !== false) return v;
      if (!this.running) throw new Error(`masa exited (${this.child.exitCode ?? this.child.signalCode}) while waiting for ${what}\n${this.tail()}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * The primary's "worker ready" / "worker died" lines name the worker as `workerPid` (their own
 * `pid` is the primary's).
 */
const readyPids = (lines: LogLine[]): number[] => lines.filter((l) => l.msg === 'masa worker ready').map((l) => l['workerPid'] as number);

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch (e) { return (e as NodeJS.ErrnoException).code === 'EPERM'; }
}

/** Sum of every series of a counter in a Prometheus text exposition (undefined: metric absent). */
function counterSum(text: string, name: string): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})?\\s+(\\S+)`).exec(line);
    if (m) sum = (sum ?? 0) + Number(m[1]);
  }
  return sum;
}

/** Runs `brski masa` with args until it exits by itself (or is killed after ms). */
async function runToExit(args: string[], ms = 20_000): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, [BRSKI, 'masa', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  const t = setTimeout(() => child.kill('SIGKILL'), ms);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(t);
  return { code, stderr, stdout };
}

describe('brski masa with 2 cluster workers (Redis store)', () => {
  let pki: TestPki;
  let redis: RedisHandle;
  let masa: MasaProcess;
  let dir: ReturnType<typeof makeTempDir>;
  let port = 0;
  let token = '';
  const pledges: Pledge[] = [];
  /** Vouchers this test had issued (200 answers), to compare with the metric. */
  let issued = 0;
  /** The first accepted RVR, replayed in test 1. */
  let acceptedRvr: Uint8Array | undefined;
  const workerPids = new Set<number>();

  const newClient = (): TlsClient => new TlsClient(`https://127.0.0.1:${port}`, pki.vendor.cert, pki.domainA.registrar);

  async function freshRvr(pledge: Pledge): Promise<Uint8Array> {
    return buildRvr(FORMAT, pledge, pki.domainA, await buildPvr(FORMAT, pledge, pki.domainA.registrar));
  }

  /** POSTs an RVR with a unique request id; returns the reply and that id. */
  async function post(client: TlsClient, rvr: Uint8Array): Promise<{ reply: Reply; reqId: string }> {
    const reqId = `t-${randomUUID()}`;
    const reply = await client.post(VOUCHER_PATH, rvr, CONTENT_TYPE, { 'x-request-id': reqId });
    if (reply.status === 200) issued++;
    return { reply, reqId };
  }

  /** reqId → pid of the worker whose request log line ("request", or "voucher issued" for an issued voucher) carries it (waits until every id is logged). */
  async function servedBy(reqIds: string[]): Promise<Map<string, number>> {
    return masa.waitFor(`request log lines for ${reqIds.length} requests`, (lines) => {
      const m = new Map<string, number>();
      for (const l of lines) if ((l.msg === 'request' || l.msg === 'voucher issued') && l.reqId && reqIds.includes(l.reqId)) m.set(l.reqId, l.pid!);
      return m.size === reqIds.length ? m : undefined;
    }, 5_000);
  }

  /** masa_vouchers_issued_total from one GET /metrics (whichever worker answers, it is the aggregate). */
  async function scrapeIssued(): Promise<number | undefined> {
    const c = newClient();
    try {
      const r = await c.request('GET', '/metrics');
      expect(r.status, `${r.text.slice(0, 300)}\n${masa.tail()}`).toBe(200);
      return counterSum(r.text, ISSUED_METRIC);
    } finally { c.close(); }
  }

  /** Each RVR on its own new connection (cluster hands connections round-robin to the workers). */
  async function onFreshConnections(rvrs: Uint8Array[]): Promise<Array<{ reply: Reply; reqId: string }>> {
    const out = [];
    for (const rvr of rvrs) {
      const c = newClient();
      try { out.push(await post(c, rvr)); } finally { c.close(); }
    }
    return out;
  }

  beforeAll(async () => {
    [pki, redis] = await Promise.all([makePki(), startRedis({ aof: false })]);
    dir = makeTempDir('brski-masa-workers-');
    port = await freePort();
    const adminPort = await freePort();
    const raw = writeMasaFiles(pki, dir.path) as Record<string, any>;
    raw['listen'] = { host: '127.0.0.1', port, workers: 2 };
    raw['admin'] = { ...raw['admin'], port: adminPort };
    raw['store'] = { type: 'redis', url: redis.url, prefix: `masa-workers:${randomUUID()}:` };
    raw['log'] = { level: 'info' };
    token = String(raw['admin'].token);
    writeFileSync(join(dir.path, 'masa.yaml'), stringify(raw));
    masa = new MasaProcess(join(dir.path, 'masa.log'), ['--config', join(dir.path, 'masa.yaml')]);
    await masa.waitFor('"masa serving with 2 workers"', (lines) => lines.some((l) => l.msg === 'masa serving with 2 workers'), 30_000);

    const admin = new TlsClient(`https://127.0.0.1:${adminPort}`, pki.vendor.cert);
    try {
      for (let i = 0; i < DEVICES; i++) {
        const pledge = await makePledge(pki);
        const r = await admin.request('PUT', `/admin/devices/${pledge.serial}`, JSON.stringify({
          certificate: Buffer.from(pledge.idevid.cert.raw).toString('base64'), productLine: 'cluster-test', policy: 'open' }),
        { authorization: `Bearer ${token}`, 'content-type': 'application/json' });
        if (r.status !== 201) throw new Error(`device import failed: ${r.status} ${r.text}`);
        pledges.push(pledge);
      }
    } finally { admin.close(); }
  });

  afterAll(async () => {
    await masa?.kill();
    await redis?.stop();
    dir?.cleanup();
  });

  it('serves from two worker processes; a replayed RVR is refused by either worker', async () => {
    const lines = masa.lines();
    const ready = readyPids(lines);
    expect(ready).toHaveLength(2);
    expect(new Set(ready).size).toBe(2);
    const primaryPid = masa.child.pid!;
    expect(ready).not.toContain(primaryPid);
    // Each worker's own "MASA listening" line names the same pids (independent of the duplicate-key reading above).
    expect(new Set(lines.filter((l) => l.msg === 'MASA listening').map((l) => l.pid))).toEqual(new Set(ready));
    const serving = lines.filter((l) => l.msg === 'masa serving with 2 workers');
    expect(serving).toHaveLength(1);
    expect(serving[0]!.pid).toBe(primaryPid);
    for (const p of ready) workerPids.add(p);

    const rvrs: Uint8Array[] = [];
    for (let i = 0; i < FIRST_BATCH; i++) rvrs.push(await freshRvr(pledges[i % DEVICES]!));
    const perConnection = FIRST_BATCH / CONNECTIONS;
    const results = await Promise.all(Array.from({ length: CONNECTIONS }, async (_, c) => {
      const client = newClient();
      try {
        const out = [];
        for (let i = 0; i < perConnection; i++) out.push(await post(client, rvrs[c * perConnection + i]!));
        return out;
      } finally { client.close(); }
    }));
    const flat = results.flat();
    expect(flat.map((r) => r.reply.status)).toEqual(Array(FIRST_BATCH).fill(200));
    acceptedRvr = rvrs[0];

    const by = await servedBy(flat.map((r) => r.reqId));
    const served = new Set(by.values());
    expect([...served].every((p) => ready.includes(p))).toBe(true);
    expect(served.size).toBe(2);
    // …and the vouchers were issued there (the authority's own line, also with the worker's pid).
    const issuedLines = masa.lines().filter((l) => l.msg === 'voucher issued');
    expect(issuedLines).toHaveLength(FIRST_BATCH);
    expect(new Set(issuedLines.map((l) => l.pid))).toEqual(new Set(ready));

    // The same RVR bytes again, each time on a new connection: both workers see it, both refuse it.
    const replays = await onFreshConnections([acceptedRvr!, acceptedRvr!, acceptedRvr!, acceptedRvr!]);
    for (const r of replays) {
      expect(r.reply.status, r.reply.text).toBe(403);
      expect(r.reply.text).toMatch(/replayed/);
    }
    const replayBy = await servedBy(replays.map((r) => r.reqId));
    expect(new Set(replayBy.values())).toEqual(new Set(ready));
  });

  it('GET /metrics on any worker answers the cluster-wide sum', async () => {
    expect(issued).toBeGreaterThan(0);
    // Each worker's own share, from its "voucher issued" lines: the aggregate must be neither.
    const shares = new Map<number, number>();
    for (const l of masa.lines()) if (l.msg === 'voucher issued') shares.set(l.pid!, (shares.get(l.pid!) ?? 0) + 1);
    expect(shares.size).toBe(2);
    expect([...shares.values()].reduce((a, b) => a + b, 0)).toBe(issued);
    expect([...shares.values()].every((n) => n < issued)).toBe(true);

    const scrapes = [];
    for (let i = 0; i < 4; i++) {
      const c = newClient(); // a new connection each time: alternates between the workers
      try {
        const reqId = `m-${randomUUID()}`;
        const r = await c.request('GET', '/metrics', undefined, { 'x-request-id': reqId });
        expect(r.status, `${r.text.slice(0, 300)}\n${masa.tail()}`).toBe(200);
        expect(counterSum(r.text, ISSUED_METRIC)).toBe(issued);
        scrapes.push(reqId);
      } finally { c.close(); }
    }
    // The scrapes were answered by both workers (so both answer with the aggregate, not their share).
    const by = await servedBy(scrapes);
    expect(new Set(by.values()).size).toBe(2);
  });

  it('replaces a worker killed with SIGKILL and keeps serving; the aggregate keeps its counts', async () => {
    const before = readyPids(masa.lines());
    expect(before).toHaveLength(2);
    const [victim, survivor] = before as [number, number];
    // Both workers have vouchers in their share; this scrape is the last one the victim answers.
    const shares = new Map<number, number>();
    for (const l of masa.lines()) if (l.msg === 'voucher issued') shares.set(l.pid!, (shares.get(l.pid!) ?? 0) + 1);
    expect(shares.get(victim)).toBeGreaterThan(0);
    const issuedBefore = await scrapeIssued();
    expect(issuedBefore).toBe(issued);
    process.kill(victim, 'SIGKILL');
    await masa.waitFor('"worker died; replacing it"', (lines) =>
      lines.some((l) => typeof l.msg === 'string' && l.msg.includes('worker died; replacing it') && l['workerPid'] === victim && l['signal'] === 'SIGKILL'), 5_000);

    // While the replacement starts, new connections are served (by the survivor).
    const during = await onFreshConnections(await Promise.all(pledges.slice(0, 3).map((p) => freshRvr(p))));
    expect(during.map((r) => r.reply.status)).toEqual([200, 200, 200]);

    const replacement = await masa.waitFor('a replacement worker ready', (lines) => {
      const fresh = readyPids(lines).filter((p) => !before.includes(p));
      return fresh.length ? fresh : undefined;
    }, 15_000);
    expect(replacement).toHaveLength(1);
    const newPid = replacement[0]!;
    expect(alive(victim)).toBe(false);
    expect(alive(newPid)).toBe(true);
    workerPids.add(newPid);

    const after = await onFreshConnections(await Promise.all(pledges.slice(0, 6).map((p) => freshRvr(p))));
    expect(after.map((r) => r.reply.status)).toEqual(Array(6).fill(200));
    const by = await servedBy([...during, ...after].map((r) => r.reqId));
    // (The replacement may already be up for the last of these: only the dead worker is excluded.)
    for (const r of during) expect([survivor, newPid]).toContain(by.get(r.reqId));
    expect(new Set(after.map((r) => by.get(r.reqId)))).toEqual(new Set([survivor, newPid]));
    expect(masa.running).toBe(true);
    // The victim's vouchers are still counted (before: the sum dropped by its share).
    expect(await scrapeIssued()).toBe(issuedBefore! + during.length + after.length);
  });

  it('replaces both workers when they die at once: the primary stays up with no worker left', async () => {
    const current = [...workerPids].filter(alive);
    expect(current).toHaveLength(2);
    for (const p of current) process.kill(p, 'SIGKILL');
    const fresh = await masa.waitFor('two replacement workers ready', (lines) => {
      const f = readyPids(lines).filter((p) => !workerPids.has(p));
      return f.length >= 2 ? f : undefined;
    }, 20_000);
    for (const p of fresh) workerPids.add(p);
    expect(masa.running).toBe(true);
    for (const p of current) expect(alive(p)).toBe(false);
    const after = await onFreshConnections(await Promise.all(pledges.slice(0, 4).map((p) => freshRvr(p))));
    expect(after.map((r) => r.reply.status)).toEqual(Array(4).fill(200));
  });

  it('SIGTERM to the primary stops every worker and exits 0', async () => {
    // A registrar's idle keep-alive connection must not hold the stop up.
    const idle = newClient();
    const h = await idle.request('GET', '/healthz');
    expect(h.status).toBe(200);
    try {
      const pids = [...workerPids];
      expect(pids.length).toBeGreaterThanOrEqual(3);
      const t0 = Date.now();
      masa.child.kill('SIGTERM');
      const exit = await Promise.race([masa.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 8_000))]);
      expect(exit, `masa did not exit within 8 s\n${masa.tail()}`).toBeDefined();
      expect(exit!.signal).toBeNull();
      expect(exit!.code, masa.tail()).toBe(0);
      expect(exit!.at - t0).toBeLessThan(5_000);
      const lines = masa.lines();
      expect(lines.some((l) => l.msg === 'masa stopped' && l.pid === masa.child.pid)).toBe(true);
      // The workers alive at the stop each stopped gracefully (their own "MASA stopped"), and none is left.
      const died = new Set(lines.filter((l) => typeof l.msg === 'string' && l.msg.includes('worker died')).map((l) => l['workerPid']));
      const liveAtStop = pids.filter((p) => !died.has(p));
      expect(liveAtStop).toHaveLength(2);
      expect(lines.filter((l) => l.msg === 'MASA stopped').map((l) => l.pid).sort()).toEqual(liveAtStop.sort());
      expect(pids.filter(alive)).toEqual([]);
    } finally { idle.close(); }
  });
});

describe('brski masa refuses more than one worker without the Redis store', () => {
  let pki: TestPki;
  beforeAll(async () => { pki = await makePki(); });

  it('listen.workers: 2 with store memory, and --workers 2 on a memory config, exit 1 with the reason', async () => {
    const dir = makeTempDir('brski-masa-workers-refuse-');
    try {
      const raw = writeMasaFiles(pki, dir.path) as Record<string, any>;
      raw['store'] = { type: 'memory' };
      raw['log'] = { level: 'info' }; // so that a start would show on stdout
      const withKey = { ...raw, listen: { host: '127.0.0.1', port: 0, workers: 2 } };
      writeFileSync(join(dir.path, 'workers.yaml'), stringify(withKey));
      writeFileSync(join(dir.path, 'memory.yaml'), stringify(raw));
      const [a, b] = await Promise.all([
        runToExit(['--config', join(dir.path, 'workers.yaml')]),
        runToExit(['--config', join(dir.path, 'memory.yaml'), '--workers', '2']),
      ]);
      expect(a.code, a.stderr).toBe(1);
      expect(a.stderr).toMatch(/listen\.workers/);
      expect(a.stderr).toMatch(/redis/);
      expect(a.stdout).not.toMatch(/MASA listening/);
      expect(b.code, b.stderr).toBe(1);
      expect(b.stderr).toMatch(/--workers/);
      expect(b.stderr).toMatch(/redis/);
      expect(b.stdout).not.toMatch(/MASA listening/);
      // No stack traces for config errors.
      expect(a.stderr + b.stderr).not.toMatch(/\n\s+at /);
    } finally { dir.cleanup(); }
  });
});

describe('brski masa gives up when workers keep dying', () => {
  it('the sixth worker death within a minute stops the primary with exit 1 and an error line', async () => {
    const [pki, redis] = await Promise.all([makePki(), startRedis({ aof: false })]);
    const dir = makeTempDir('brski-masa-workers-budget-');
    let masa: MasaProcess | undefined;
    try {
      const raw = writeMasaFiles(pki, dir.path) as Record<string, any>;
      raw['listen'] = { host: '127.0.0.1', port: await freePort(), workers: 2 };
      raw['admin'] = { ...raw['admin'], port: await freePort() };
      raw['store'] = { type: 'redis', url: redis.url, prefix: `masa-budget:${randomUUID()}:` };
      raw['log'] = { level: 'info' };
      writeFileSync(join(dir.path, 'masa.yaml'), stringify(raw));
      masa = new MasaProcess(join(dir.path, 'masa.log'), ['--config', join(dir.path, 'masa.yaml')]);
      const m = masa;
      await m.waitFor('"masa serving with 2 workers"', (lines) => lines.some((l) => l.msg === 'masa serving with 2 workers'), 30_000);
      const killed = new Set<number>();
      // Kill both workers, three times: deaths 1–5 are replaced (back-off 250 ms … 4 s), the sixth is not.
      for (let round = 0; round < 3; round++) {
        const live = readyPids(m.lines()).filter((p) => !killed.has(p));
        expect(live, m.tail()).toHaveLength(2);
        for (const p of live) { killed.add(p); process.kill(p, 'SIGKILL'); }
        if (round < 2) {
          await m.waitFor(`two replacements (round ${round + 1})`, (lines) => readyPids(lines).filter((p) => !killed.has(p)).length >= 2, 20_000);
        }
      }
      const exit = await Promise.race([m.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 20_000))]);
      expect(exit, `primary still running\n${m.tail()}`).toBeDefined();
      expect(exit!.code, m.tail()).toBe(1);
      const lines = m.lines();
      expect(lines.some((l) => l.msg === 'masa workers keep dying; giving up' && l['level'] === 'error')).toBe(true);
      expect(lines.filter((l) => typeof l.msg === 'string' && l.msg.includes('worker died; replacing it'))).toHaveLength(5);
      for (const p of readyPids(lines)) expect(alive(p)).toBe(false);
    } finally {
      await masa?.kill();
      await redis.stop();
      dir.cleanup();
    }
  }, 60_000);
});

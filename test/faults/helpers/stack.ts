/**
 * The system under test for the fault, load and abuse suites: a PKI directory (`brski pki init`
 * plus a second domain), a local Redis with AOF, and the MASA and the registrar each in its own
 * process on fixed ports (so a restarted process comes back where the pledges look for it),
 * optionally with a breakable TCP proxy between the registrar and the MASA and/or Redis.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { parse, stringify } from 'yaml';
import { createE2ePki, masaYaml, registrarYaml, type E2ePki } from '../../e2e/helpers/stack.ts';
import { freePort } from '../../helpers/ports.ts';
import { startRedis, type RedisHandle } from '../../helpers/redis.ts';
import { makeTempDir, type TempDir } from '../../helpers/tmp.ts';
import { ServiceProc } from './proc.ts';
import { TcpProxy } from './proxy.ts';

type Doc = Record<string, any>;

export interface StackOptions {
  devices: number;
  /** Registrar → MASA through a TcpProxy (delay / cut). */
  masaProxy?: boolean;
  /** Registrar → Redis through a TcpProxy (cut). The MASA keeps a direct connection. */
  registrarRedisProxy?: boolean;
  /** Patches of the generated YAML documents. */
  masa?: (doc: Doc) => void;
  registrar?: (doc: Doc) => void;
  /** Do not start the processes yet. */
  deferStart?: boolean;
}

export const MASA_PREFIX = 'f:masa:';
export const REGISTRAR_PREFIX = 'f:reg:';
export const DOMAIN = 'owner';

export class FaultStack {
  masaProxy: TcpProxy | undefined;
  redisProxy: TcpProxy | undefined;
  #inspect: Redis | undefined;

  private constructor(
    readonly tmp: TempDir, readonly redis: RedisHandle, readonly pki: E2ePki,
    readonly masa: ServiceProc, readonly registrar: ServiceProc,
    readonly ports: { masa: number; masaAdmin: number; registrar: number; registrarAdmin: number },
  ) {}

  static async create(o: StackOptions): Promise<FaultStack> {
    const tmp = makeTempDir('brski-faults-');
    const redis = await startRedis({ aof: true });
    const pki = await createE2ePki(tmp.path, o.devices);
    const ports = { masa: await freePort(), masaAdmin: await freePort(), registrar: await freePort(), registrarAdmin: await freePort() };

    let masaTarget = ports.masa;
    let masaProxy: TcpProxy | undefined;
    if (o.masaProxy) { masaProxy = new TcpProxy('127.0.0.1', ports.masa); masaTarget = await masaProxy.start(); }
    let registrarRedis = redis.url;
    let redisProxy: TcpProxy | undefined;
    if (o.registrarRedisProxy) { redisProxy = new TcpProxy(redis.host, redis.port); registrarRedis = `redis://127.0.0.1:${await redisProxy.start()}`; }

    const masaDoc = parse(readFileSync(masaYaml(pki, ports.masa, redis.url, MASA_PREFIX), 'utf8')) as Doc;
    masaDoc['admin'] = { ...masaDoc['admin'], port: ports.masaAdmin };
    o.masa?.(masaDoc);
    const regDoc = parse(readFileSync(registrarYaml(pki, { port: ports.registrar, masaPort: masaTarget, redisUrl: registrarRedis, prefix: REGISTRAR_PREFIX, domain: DOMAIN }), 'utf8')) as Doc;
    regDoc['admin'] = { ...regDoc['admin'], port: ports.registrarAdmin };
    o.registrar?.(regDoc);
    const masaFile = join(pki.dir, 'faults-masa.yaml');
    const regFile = join(pki.dir, 'faults-registrar.yaml');
    writeFileSync(masaFile, stringify(masaDoc), { mode: 0o600 });
    writeFileSync(regFile, stringify(regDoc), { mode: 0o600 });

    const stack = new FaultStack(tmp, redis, pki, new ServiceProc('masa', masaFile), new ServiceProc('registrar', regFile), ports);
    stack.masaProxy = masaProxy;
    stack.redisProxy = redisProxy;
    if (!o.deferStart) {
      await stack.masa.start();
      await stack.registrar.start();
    }
    return stack;
  }

  get registrarUrl(): string { return `https://127.0.0.1:${this.ports.registrar}`; }
  get registrarAdminUrl(): string { return `https://127.0.0.1:${this.ports.registrarAdmin}`; }
  get masaUrl(): string { return `https://127.0.0.1:${this.ports.masa}`; }
  get masaAdminUrl(): string { return `https://127.0.0.1:${this.ports.masaAdmin}`; }
  get masaAdminToken(): string { return readFileSync(this.pki.manifest.masaAdminToken, 'utf8').trim(); }
  get registrarAdminToken(): string { return readFileSync(this.pki.manifest.registrarAdminToken, 'utf8').trim(); }

  /** A direct Redis connection for inspecting (and, in the tamper test, editing) what the services stored. */
  inspect(): Redis {
    this.#inspect ??= new Redis(this.redis.url, { maxRetriesPerRequest: 5 });
    return this.#inspect;
  }

  /** Number of Redis keys under a prefix (SCAN, not KEYS: fine on a test Redis). */
  async countKeys(prefix: string): Promise<number> {
    let n = 0;
    let cursor = '0';
    do {
      const [next, batch] = await this.inspect().scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      n += batch.length;
    } while (cursor !== '0');
    return n;
  }

  async keys(pattern: string): Promise<string[]> {
    const out: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.inspect().scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      out.push(...batch);
    } while (cursor !== '0');
    return out;
  }

  async stop(): Promise<void> {
    await this.registrar.stop().catch(() => undefined);
    await this.masa.stop().catch(() => undefined);
    await this.masaProxy?.stop();
    await this.redisProxy?.stop();
    this.#inspect?.disconnect();
    await this.redis.stop();
    this.tmp.cleanup();
  }
}

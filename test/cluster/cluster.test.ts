/**
 * Scale-out proof without containers: a real 3-master Redis Cluster (local redis-server
 * processes), one MASA process and two registrar processes sharing it, and a pledge fleet spread
 * over both registrars. Checks: every pledge onboards, no certificate serial is issued twice,
 * every voucher the registrars relayed is in the MASA's hash-chained audit log (and the other way
 * round), state really lives in the cluster; then one registrar is SIGKILLed mid-fleet and the
 * fleet finishes on the other.
 *
 * Store wiring: if the services' config schemas accept a cluster store, the YAML selects it;
 * otherwise (today) test/cluster/service-main.ts injects the services' own Redis stores on a
 * createRedisClient cluster client — see the `it.todo` below and docs/deploy.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisClient, waitForRedis, type RedisClient } from '@brski/shared/store/redis';
import { runFleet, type FleetReport } from '@brski/pledge-sim/fleet/fleet';
import { manifestSource, type PledgeSource } from '@brski/pledge-sim/fleet/sources';
import { initDemoPki, type PkiManifest } from '../../cli/lib/pki-init.ts';
import { masaConfigSchema } from '../../masa/src/config.ts';
import { keys as masaKeys } from '../../masa/src/store/keys.ts';
import { RedisMasaStore } from '../../masa/src/store/redis.ts';
import { verifyAuditChain } from '../../masa/src/store/audit-chain.ts';
import { registrarConfigSchema } from '../../registrar/src/config.ts';
import { RedisRegistrarStore } from '../../registrar/src/store/redis.ts';
import { freePort } from '../helpers/ports.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { startRedisCluster, type RedisClusterHandle } from './redis-cluster.ts';
import { ServiceProcess } from './processes.ts';

const PHASE1 = 60;   // split evenly: half the pledges try registrar A first, half B
const PHASE2 = 60;   // all try A first; A is killed after KILL_AFTER of them finished
const KILL_AFTER = 10;
const MASA_PREFIX = 'brski:masa:';
const REG_PREFIX = 'brski:registrar:';
const DOMAIN = 'example-domain';

/** Candidate `store` shapes for a cluster; the first one a service schema accepts goes into its YAML. */
function clusterStoreShapes(nodes: Array<{ host: string; port: number }>, prefix: string): Record<string, unknown>[] {
  return [
    { type: 'redis', prefix, redis: { mode: 'cluster', nodes } },
    { type: 'redis', prefix, mode: 'cluster', nodes },
  ];
}

function acceptedStore(schema: { shape: { store: { safeParse(v: unknown): { success: boolean } } } }, shapes: Record<string, unknown>[]): Record<string, unknown> | undefined {
  return shapes.find((s) => schema.shape.store.safeParse(s).success);
}

describe('Redis Cluster: one MASA, two registrars, a fleet across both', () => {
  let cluster: RedisClusterHandle;
  let pki: PkiManifest;
  let source: PledgeSource;
  let masa: ServiceProcess;
  let regA: ServiceProcess;
  let regB: ServiceProcess;
  let urlA = '';
  let urlB = '';
  let client: RedisClient;
  let masaClient: RedisClient;
  let masaStore: RedisMasaStore;
  let regStore: RedisRegistrarStore;
  let wiring: { masa: string; registrar: string } = { masa: 'unknown', registrar: 'unknown' };
  const reports: FleetReport[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster({ masters: 3 });
    const dir = makeTempDir('brski-cluster-pki-').path;
    const [masaPort, portA, portB] = [await freePort(), await freePort(), await freePort()];
    pki = await initDemoPki({ out: dir, devices: PHASE1 + PHASE2, masaPort, registrarPort: portA, serialPrefix: 'CLU', force: true });
    source = manifestSource(pki);

    const masaStoreCfg = acceptedStore(masaConfigSchema as never, clusterStoreShapes(cluster.nodes, MASA_PREFIX));
    const regStoreCfg = acceptedStore(registrarConfigSchema as never, clusterStoreShapes(cluster.nodes, REG_PREFIX));
    // Only the services whose config cannot name the cluster get the injected store.
    const inject = { BRSKI_TEST_REDIS: JSON.stringify({ mode: 'cluster', nodes: cluster.nodes }) };

    const masaDoc = parse(readFileSync(pki.masaConfig, 'utf8')) as Record<string, any>;
    masaDoc['admin'] = { ...masaDoc['admin'], port: await freePort() };
    masaDoc['store'] = masaStoreCfg ?? { type: 'memory' };
    masaDoc['log'] = { level: 'warn' };
    const masaYaml = join(dir, 'masa-cluster.yaml');
    writeFileSync(masaYaml, stringify(masaDoc));

    const regYaml = async (name: string, port: number): Promise<string> => {
      const doc = parse(readFileSync(pki.registrarConfig, 'utf8')) as Record<string, any>;
      doc['listen'] = { host: '127.0.0.1', port };
      doc['admin'] = { ...doc['admin'], port: await freePort() };
      // Short waits so a pledge deferred with 202 comes back quickly in a test.
      doc['masa'] = { retryAfter: 1, backgroundDelayMs: 200 };
      doc['store'] = regStoreCfg ?? { type: 'memory' };
      doc['log'] = { level: 'warn' };
      const file = join(dir, `registrar-${name}.yaml`);
      writeFileSync(file, stringify(doc));
      return file;
    };

    masa = new ServiceProcess('masa', masaYaml, masaStoreCfg ? {} : inject);
    regA = new ServiceProcess('registrar', await regYaml('a', portA), regStoreCfg ? {} : inject);
    regB = new ServiceProcess('registrar', await regYaml('b', portB), regStoreCfg ? {} : inject);
    const m = await masa.start();
    const [a, b] = await Promise.all([regA.start(), regB.start()]);
    expect(m.port).toBe(masaPort);
    urlA = `https://127.0.0.1:${a.port}`;
    urlB = `https://127.0.0.1:${b.port}`;
    wiring = { masa: m.store, registrar: a.store };

    client = createRedisClient({ mode: 'cluster', nodes: cluster.nodes });
    await waitForRedis(client);
    masaClient = createRedisClient({ mode: 'cluster', nodes: cluster.nodes, keyPrefix: MASA_PREFIX });
    masaStore = new RedisMasaStore(masaClient, true);
    regStore = new RedisRegistrarStore(client, { domain: DOMAIN, prefix: REG_PREFIX });
  }, 120_000);

  afterAll(async () => {
    // Bounded: the Redis servers are this worker's children, and if a close hung they would keep
    // the worker (and the whole run) alive. One full-suite run stalled here once; the cause was
    // not found, so the cluster is stopped whatever the clients do.
    const closeClients = async (): Promise<void> => {
      await Promise.all([regA?.stop(), regB?.stop(), masa?.stop()]);
      await masaStore?.close();
      await client?.quit().catch(() => undefined);
    };
    try {
      await Promise.race([closeClients(), new Promise((r) => setTimeout(r, 20_000).unref())]);
    } finally {
      await cluster?.stop();
    }
  });

  const fleet = (offset: number, count: number, registrars: string[], onResult?: (done: number) => void) => runFleet({
    count, concurrency: 6, format: 'mixed', registrars, trust: source.trust,
    secureElement: (i) => source.secureElement(offset + i),
    // One reconnect to a dead registrar, then the next one in the list.
    retry: { capSeconds: 2, defaultSeconds: 1, transportRetries: 1, maxTotalSeconds: 60 },
    timeoutMs: 20_000,
    ...(onResult ? { onResult: (_o, p) => onResult(p.done) } : {}),
  });

  /** Checks every onboarded pledge's records in the cluster; returns the LDevID serials seen. */
  async function checkRecords(report: FleetReport, opts: { exactAudit: boolean }): Promise<string[]> {
    const serials: string[] = [];
    for (const o of report.outcomes) {
      expect(o.ok, `${o.serial}: ${o.reason} ${o.message}`).toBe(true);
      const ldevid = o.ldevidSerial!.toUpperCase();
      serials.push(ldevid);
      const rec = await regStore.getPledge(o.serial!);
      expect(rec?.state, o.serial).toBe('enrolled');
      expect(rec?.currentCertificate?.toUpperCase(), o.serial).toBe(ldevid);
      const cert = await regStore.getCertificate(ldevid);
      expect(cert?.pledgeSerial, `certificate ${ldevid}`).toBe(o.serial);

      // MASA side: an unbroken hash chain, one entry per voucher counted on the device.
      const audit = await masaStore.readAudit(o.serial!);
      expect(verifyAuditChain(audit), o.serial).toEqual({ ok: true });
      const counted = Number(await masaClient.hget(masaKeys.device(o.serial!), 'vouchers'));
      expect(audit.length, `${o.serial}: audit entries vs vouchers counted`).toBe(counted);
      const relayed = (await regStore.pledgeEvents(o.serial!)).filter((e) => e.type === 'voucher-issued').length;
      expect(relayed, o.serial).toBeGreaterThanOrEqual(1);
      // Without a crash, every voucher the MASA logged reached a registrar and vice versa; a
      // registrar killed between MASA answer and its own record may leave the MASA one ahead.
      if (opts.exactAudit) expect(audit.length, `${o.serial}: MASA audit vs registrar events`).toBe(relayed);
      else expect(audit.length).toBeGreaterThanOrEqual(relayed);
    }
    return serials;
  }

  it('runs on a 3-master cluster with every slot covered', async () => {
    expect(cluster.nodes).toHaveLength(3);
    const info = await (client as import('ioredis').Cluster).cluster('INFO');
    expect(String(info)).toMatch(/cluster_state:ok/);
    expect(String(info)).toMatch(/cluster_size:3/);
  });

  // The services' own config cannot select a cluster yet: their `store` schema takes a
  // single-node `url` only (masa/src/config.ts, registrar/src/config.ts; the registrar also
  // builds its client with `new Redis(url)` instead of createRedisClient). Until that lands the
  // proof runs with the stores injected (service-main.ts); the test below turns on by itself.
  const schemaReady = !!acceptedStore(masaConfigSchema as never, clusterStoreShapes([{ host: 'h', port: 1 }], MASA_PREFIX))
    && !!acceptedStore(registrarConfigSchema as never, clusterStoreShapes([{ host: 'h', port: 1 }], REG_PREFIX));
  if (schemaReady) {
    it('services select the cluster from their own YAML', () => {
      expect(wiring).toEqual({ masa: 'config', registrar: 'config' });
    });
  } else {
    it.todo('services select the cluster from their own YAML (store schema takes only a single-node url; stores injected meanwhile)');
  }

  it('onboards a fleet spread over both registrars: no duplicate serials, no lost audit entries', async () => {
    const half = PHASE1 / 2;
    const [r1, r2] = await Promise.all([fleet(0, half, [urlA, urlB]), fleet(half, half, [urlB, urlA])]);
    reports.push(r1, r2);
    for (const r of [r1, r2]) expect(r.failuresByReason, JSON.stringify(r.outcomes.filter((o) => !o.ok).slice(0, 3))).toEqual({});
    expect(r1.onboarded + r2.onboarded).toBe(PHASE1);
    // Both registrars did work (no failover happened: nothing was down).
    expect(r1.outcomes.every((o) => o.registrar === urlA)).toBe(true);
    expect(r2.outcomes.every((o) => o.registrar === urlB)).toBe(true);

    const serials = [...await checkRecords(r1, { exactAudit: true }), ...await checkRecords(r2, { exactAudit: true })];
    expect(new Set(serials).size).toBe(serials.length);

    // The state is in the cluster and spread over its masters (MASA keys carry per-device hash tags).
    const sizes = await cluster.dbsizes();
    expect(sizes.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  }, 90_000);

  it('finishes the fleet on the surviving registrar after SIGKILL of the other', async () => {
    let killed = false;
    let killedAt = -1;
    const report = await fleet(PHASE1, PHASE2, [urlA, urlB], (done) => {
      if (!killed && done >= KILL_AFTER) {
        killed = true;
        killedAt = done;
        void regA.stop('SIGKILL');
      }
    });
    reports.push(report);
    expect(killed).toBe(true);
    expect(regA.running).toBe(false);
    expect(report.failuresByReason, JSON.stringify(report.outcomes.filter((o) => !o.ok).slice(0, 3))).toEqual({});
    expect(report.onboarded).toBe(PHASE2);
    // Pledges that started after the kill can only have been served by B.
    const late = report.outcomes.filter((o) => o.index >= killedAt + 6 /* concurrency */);
    expect(late.length).toBeGreaterThan(0);
    expect(late.every((o) => o.registrar === urlB)).toBe(true);

    await checkRecords(report, { exactAudit: false });
    const all = reports.flatMap((r) => r.outcomes.map((o) => o.ldevidSerial!.toUpperCase()));
    expect(all).toHaveLength(PHASE1 + PHASE2);
    expect(new Set(all).size).toBe(all.length);
    expect(regB.running).toBe(true);
  }, 90_000);
});

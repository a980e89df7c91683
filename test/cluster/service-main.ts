/**
 * Runs the MASA or a registrar in its own process for the cluster proof test.
 *
 * The service is built from its YAML with its own schema and factory (createMasa /
 * createRegistrar). When BRSKI_TEST_CLUSTER_NODES is set ("host:port,host:port,…") the store is
 * the service's own Redis store class on a Redis Cluster client from createRedisClient, injected
 * through the factory's `deps.store`: the services' config schemas accept only a single-node
 * `store.url` so far (see docs/deploy.md "Redis Cluster"), and this keeps everything else — key
 * layout, Lua scripts, transactions — exactly the production code.
 *
 * Prints one JSON line {"ready":true,"kind":…,"port":N,"store":…} and stops on SIGTERM/SIGINT.
 * Usage: tsx test/cluster/service-main.ts masa|registrar <config.yaml>
 */
import { loadConfig } from '@brski/shared/config/load';
import { createRedisClient, waitForRedis } from '@brski/shared/store/redis';
import { loadMasaConfig } from '../../masa/src/config.ts';
import { createMasa } from '../../masa/src/server.ts';
import { RedisMasaStore } from '../../masa/src/store/redis.ts';
import { registrarConfigSchema } from '../../registrar/src/config.ts';
import { createRegistrar } from '../../registrar/src/server.ts';
import { RedisRegistrarStore } from '../../registrar/src/store/redis.ts';

const [kind, file] = process.argv.slice(2);
if ((kind !== 'masa' && kind !== 'registrar') || !file) {
  process.stderr.write('usage: service-main.ts masa|registrar <config.yaml>\n');
  process.exit(2);
}

function clusterNodes(): Array<{ host: string; port: number }> | undefined {
  const raw = process.env['BRSKI_TEST_CLUSTER_NODES'];
  if (!raw) return undefined;
  return raw.split(',').map((hp) => {
    const i = hp.lastIndexOf(':');
    const port = Number(hp.slice(i + 1));
    if (i <= 0 || !Number.isInteger(port)) throw new Error(`BRSKI_TEST_CLUSTER_NODES: bad node ${hp}`);
    return { host: hp.slice(0, i), port };
  });
}

const nodes = clusterNodes();
const storeKind = nodes ? 'cluster-injected' : 'config';

async function build(): Promise<{ start(): Promise<void>; stop(): Promise<void>; readonly port: number }> {
  if (kind === 'masa') {
    const config = loadMasaConfig(file!);
    if (!nodes) return createMasa(config);
    const prefix = config.store.type === 'redis' ? config.store.prefix : 'brski:masa:';
    const client = createRedisClient({ mode: 'cluster', nodes, keyPrefix: prefix });
    await waitForRedis(client);
    return createMasa(config, { store: new RedisMasaStore(client, true) });
  }
  const config = loadConfig(file!, registrarConfigSchema, { envPrefix: 'BRSKI_REGISTRAR' });
  if (!nodes) return createRegistrar(config);
  const prefix = config.store.type === 'redis' ? config.store.prefix : 'brski:registrar:';
  const client = createRedisClient({ mode: 'cluster', nodes });
  await waitForRedis(client);
  return createRegistrar(config, { store: new RedisRegistrarStore(client, { domain: config.domain, prefix }) });
}

const service = await build();
await service.start();
process.stdout.write(`${JSON.stringify({ ready: true, kind, port: service.port, store: storeKind })}\n`);
let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  service.stop().then(() => process.exit(0), () => process.exit(1));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

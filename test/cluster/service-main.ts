/**
 * Runs the MASA or a registrar in its own process for the cluster proof test.
 *
 * The service is built from its YAML with its own schema and factory (createMasa /
 * createRegistrar). When BRSKI_TEST_REDIS is set (a RedisConfig as JSON, e.g. a cluster) the
 * store is the service's own Redis store class on a createRedisClient client, connected before
 * start and injected through the factory's `deps.store`: the services' config schemas accept only
 * a single-node `store.url` so far (docs/deploy.md "Redis topologies"), and this keeps everything
 * else — key layout, Lua scripts, transactions — exactly the production code.
 *
 * Prints one JSON line {"ready":true,"kind":…,"port":N,"store":…} and stops on SIGTERM/SIGINT.
 * Usage: tsx test/cluster/service-main.ts masa|registrar <config.yaml>
 */
import { loadConfig } from '@brski/shared/config/load';
import { createRedisClient, redisConfigSchema, waitForRedis, type RedisConfig } from '@brski/shared/store/redis';
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

/** BRSKI_TEST_REDIS: JSON of a shared RedisConfig ({"mode":"cluster","nodes":[…]} or {"mode":"single","url":…}). */
function injectedRedis(): RedisConfig | undefined {
  const raw = process.env['BRSKI_TEST_REDIS'];
  return raw ? redisConfigSchema.parse(JSON.parse(raw)) : undefined;
}

const redis = injectedRedis();
const storeKind = redis ? `${redis.mode}-injected` : 'config';

async function build(): Promise<{ start(): Promise<void>; stop(): Promise<void>; readonly port: number }> {
  if (kind === 'masa') {
    const config = loadMasaConfig(file!);
    if (!redis) return createMasa(config);
    const prefix = config.store.type === 'redis' ? config.store.prefix : 'brski:masa:';
    const client = createRedisClient({ ...redis, keyPrefix: prefix });
    await waitForRedis(client);
    return createMasa(config, { store: new RedisMasaStore(client, true) });
  }
  const config = loadConfig(file!, registrarConfigSchema, { envPrefix: 'BRSKI_REGISTRAR' });
  if (!redis) return createRegistrar(config);
  const prefix = config.store.type === 'redis' ? config.store.prefix : 'brski:registrar:';
  const client = createRedisClient(redis);
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

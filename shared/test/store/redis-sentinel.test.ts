/**
 * Sentinel mode against a real redis-server in sentinel mode that monitors a real master
 * (local processes only; skipped when the harness ran Redis in a container).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, waitForPing, type RedisHandle } from '../../../test/helpers/redis.ts';
import { freePort } from '../../../test/helpers/ports.ts';
import { makeTempDir, type TempDir } from '../../../test/helpers/tmp.ts';
import { createRedisClient, waitForRedis, type RedisClient } from '../../src/store/redis.ts';

describe('createRedisClient in sentinel mode', () => {
  let master: RedisHandle;
  let sentinel: ChildProcess | undefined;
  let sentinelPort: number;
  let dir: TempDir;
  let client: RedisClient | undefined;

  beforeAll(async () => {
    master = await startRedis({ aof: false });
    if (master.kind !== 'local') return;
    dir = makeTempDir('brski-sentinel-');
    sentinelPort = await freePort();
    const conf = join(dir.path, 'sentinel.conf');
    writeFileSync(conf, [`port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir.path}`,
      `sentinel monitor brski ${master.host} ${master.port} 1`, ''].join('\n'));
    sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    process.once('exit', () => sentinel?.kill('SIGKILL'));
    await waitForPing('127.0.0.1', sentinelPort, 15_000);
  });
  afterAll(async () => {
    client?.disconnect();
    sentinel?.kill('SIGTERM');
    await master?.stop();
    dir?.cleanup();
  });

  it('finds the master through the sentinel and writes to it', async (ctx) => {
    if (master.kind !== 'local') ctx.skip();
    client = createRedisClient({ mode: 'sentinel', name: 'brski', sentinels: [{ host: '127.0.0.1', port: sentinelPort }] });
    await waitForRedis(client, 15_000);
    expect(await client.set('via-sentinel', 'x', 'NX')).toBe('OK');
    // The write landed on the master the sentinel monitors.
    const direct = createRedisClient({ mode: 'single', url: master.url });
    await waitForRedis(direct);
    expect(await direct.get('via-sentinel')).toBe('x');
    direct.disconnect();
  });

  it('fails with a typed 503 when the sentinel does not know the master name', async (ctx) => {
    if (master.kind !== 'local') ctx.skip();
    const wrong = createRedisClient({ mode: 'sentinel', name: 'nope', sentinels: [{ host: '127.0.0.1', port: sentinelPort }] });
    const err = await waitForRedis(wrong, 1_500).catch((e: unknown) => e);
    wrong.disconnect();
    expect(err).toMatchObject({ code: 'unavailable', httpStatus: 503 });
  });
});

/**
 * Sizing figure for docs/deploy.md: CPU seconds spent by the registrar and the MASA process per
 * onboarding (voucher + EST), read from /proc/<pid>/stat around a fleet run, so the result is per
 * core of each service regardless of what else shares the machine. Not a test.
 * Usage: npx tsx test/cluster/measure-cpu.ts [count=300] [format=jws]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { runFleet, type FleetFormat } from '@brski/pledge-sim/fleet/fleet';
import { manifestSource } from '@brski/pledge-sim/fleet/sources';
import { initDemoPki } from '../../cli/lib/pki-init.ts';
import { freePort } from '../helpers/ports.ts';
import { startRedis } from '../helpers/redis.ts';
import { makeTempDir } from '../helpers/tmp.ts';
import { ServiceProcess } from './processes.ts';

const count = Number(process.argv[2] ?? 300);
const format = (process.argv[3] ?? 'jws') as FleetFormat;
const TICK = 100; // USER_HZ on Linux

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK; // utime + stime
}

const redis = await startRedis({ aof: true });
const dir = makeTempDir('brski-measure-').path;
const [masaPort, regPort] = [await freePort(), await freePort()];
const pki = await initDemoPki({ out: dir, devices: count + 20, masaPort, registrarPort: regPort, force: true });
const edit = (file: string, f: (d: any) => void): string => {
  const d = parse(readFileSync(file, 'utf8'));
  f(d);
  const out = `${file}.measure.yaml`;
  writeFileSync(out, stringify(d));
  return out;
};
const inject = { BRSKI_TEST_REDIS: JSON.stringify({ mode: 'single', url: redis.url }) };
const masa = new ServiceProcess('masa', edit(pki.masaConfig, (d) => { d.log = { level: 'warn' }; d.admin.port = 0; }), inject);
const reg = new ServiceProcess('registrar', edit(pki.registrarConfig, (d) => {
  d.log = { level: 'warn' }; d.admin.port = 0; d.store = { type: 'redis', url: redis.url, prefix: 'brski:registrar:' };
}));
await masa.start();
await reg.start();
const source = manifestSource(pki);
const fleet = (offset: number, n: number) => runFleet({
  count: n, concurrency: 16, format, registrars: [`https://127.0.0.1:${regPort}`], trust: source.trust,
  secureElement: (i) => source.secureElement(offset + i), retry: { capSeconds: 2 },
});
await fleet(0, 20); // warm-up (JIT, caches)
const before = { masa: cpuSeconds(masa.pid!), reg: cpuSeconds(reg.pid!) };
const report = await fleet(20, count);
const after = { masa: cpuSeconds(masa.pid!), reg: cpuSeconds(reg.pid!) };
const regCpu = after.reg - before.reg;
const masaCpu = after.masa - before.masa;
process.stdout.write(`${JSON.stringify({
  measuredAt: new Date().toISOString(), format, onboarded: report.onboarded, failed: report.failed,
  wallSeconds: +(report.durationMs / 1000).toFixed(2), wallThroughput: +report.throughput.toFixed(1),
  registrarCpuSeconds: +regCpu.toFixed(2), masaCpuSeconds: +masaCpu.toFixed(2),
  onboardingsPerRegistrarCoreSecond: +(report.onboarded / regCpu).toFixed(1),
  vouchersPerMasaCoreSecond: +(report.onboarded / masaCpu).toFixed(1),
}, null, 2)}\n`);
await Promise.all([masa.stop(), reg.stop()]);
await redis.stop();

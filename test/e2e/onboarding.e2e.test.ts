/**
 * End to end: MASA, registrars and pledges in separate processes, Redis stores.
 * Pledge indexes of the PKI directory: 0-2 formats, 3 replay, 4 replay attacker, then two fleets.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCertificatesPem } from '@brski/shared/crypto/software-signer';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { FactoryStation } from '../../pledge-sim/src/factory/station.ts';
import { buildPvr } from '../../pledge-sim/src/pledge/voucher-check.ts';
import { RegistrarLink, DEFAULT_RETRY } from '../../pledge-sim/src/pledge/transport.ts';
import { manifestSource } from '../../pledge-sim/src/fleet/sources.ts';
import { startRedis, type RedisHandle } from '../helpers/redis.ts';
import { makeTempDir, type TempDir } from '../helpers/tmp.ts';
import {
  ServiceProcess, clonedPledge, createE2ePki, freePort, masaYaml, registrarYaml, runBrski, unknownManufacturerPledge, type E2ePki,
} from './helpers/stack.ts';

const FLEET = 80;
let tmp: TempDir;
let redis: RedisHandle;
let pki: E2ePki;
let masa: ServiceProcess;
let regA: ServiceProcess;
let regB: ServiceProcess;
let masaPort: number;
let urlA: string;
let urlB: string;

const trustArgs = (): string[] => pki.trust.flatMap((t) => ['--trust', t]);
const pledgeArgs = (cert: string, key: string, registrar: string, format = 'jws'): string[] =>
  ['pledge', '--registrar', registrar, '--cert', cert, '--key', key, ...trustArgs(), '--format', format, '--retry-cap', '1', '--max-wait', '60', '--json'];

beforeAll(async () => {
  tmp = makeTempDir('brski-e2e-');
  redis = await startRedis();
  pki = await createE2ePki(tmp.path, 5 + 2 * FLEET);
  masaPort = await freePort();
  masa = new ServiceProcess('masa', masaYaml(pki, masaPort, redis.url, 'e2e:masa:'));
  const [portA, portB] = [await freePort(), await freePort()];
  regA = new ServiceProcess('registrar', registrarYaml(pki, { port: portA, masaPort, redisUrl: redis.url, prefix: 'e2e:regA:', domain: 'owner' }));
  regB = new ServiceProcess('registrar', registrarYaml(pki, { port: portB, masaPort, redisUrl: redis.url, prefix: 'e2e:regB:', domain: 'other', other: true }));
  await masa.start();
  await Promise.all([regA.start(), regB.start()]);
  urlA = `https://127.0.0.1:${portA}`;
  urlB = `https://127.0.0.1:${portB}`;
}, 180_000);

afterAll(async () => {
  await Promise.all([regA?.stop(), regB?.stop()]);
  await masa?.stop();
  await redis?.stop();
  tmp?.cleanup();
});

describe('e2e onboarding (separate processes, Redis)', () => {
  (['jws', 'cms', 'cose'] as const).forEach((format, i) => {
    it(`onboards a pledge with a ${format} voucher`, async () => {
      const p = pki.manifest.pledges[i]!;
      const r = await runBrski(pledgeArgs(p.cert, p.key, urlA, format));
      expect(r.json, r.stdout + r.stderr).toMatchObject({ ok: true, serial: p.serial, seState: 'enrolled' });
    });
  });

  it('a pledge facing a registrar of another domain does not enroll (device owned by the first domain)', async () => {
    const p = pki.manifest.pledges[0]!;
    const owned = await runBrski(pledgeArgs(p.cert, p.key, urlA)); // first use: domain A owns the device
    expect(owned.json, owned.stdout + owned.stderr).toMatchObject({ ok: true });
    const r = await runBrski(pledgeArgs(p.cert, p.key, urlB));
    expect(r.code).toBe(1);
    expect(r.json, r.stdout + r.stderr).toMatchObject({ ok: false, reason: 'voucher-refused' });
    expect(r.json.message).toMatch(/claimed-by-other-domain|claimed by another domain/);
  });

  it('refuses an IDevID from an unknown manufacturer', async () => {
    const u = await unknownManufacturerPledge(tmp.path, 'ROGUE-0001');
    const r = await runBrski(pledgeArgs(u.cert, u.key, urlA));
    expect(r.json, r.stdout + r.stderr).toMatchObject({ ok: false, reason: 'voucher-refused' });
    expect(r.json.message).toMatch(/does not chain to a trusted manufacturer/);
  });

  it('refuses a cloned IDevID (same serial, other key) at the MASA', async () => {
    const original = pki.manifest.pledges[1]!; // seeded into the MASA from devices.json: its key is on record
    const clone = await clonedPledge(pki, original.serial);
    const r = await runBrski(pledgeArgs(clone.cert, clone.key, urlA));
    expect(r.json, r.stdout + r.stderr).toMatchObject({ ok: false, reason: 'voucher-refused' });
    expect(r.json.message).toMatch(/clone-detected/);
  });

  it('the factory refuses a second IDevID for a serial with another key', async () => {
    const m = pki.manifest;
    const pem = (f: string) => parseCertificatesPem(readFileSync(f, 'utf8'));
    const station = new FactoryStation({
      endpoint: `https://127.0.0.1:${masaPort}/factory/idevid`, key: readFileSync(m.station.key, 'utf8'), certificates: pem(m.station.cert),
      masaTlsAnchors: pem(m.manufacturerCa.cert), idevidAnchors: pem(m.idevidCa.cert), retries: 0,
    });
    try {
      const se = await station.manufacture('E2E-FAB-CLONE-1');
      expect(se.state).toBe('manufactured');
      await expect(station.manufacture('E2E-FAB-CLONE-1')).rejects.toMatchObject({ code: 'clone-detected' });
    } finally {
      station.close();
    }
  });

  it('refuses a replayed PVR: on another registrar process (MASA nonce check) and under another IDevID', async () => {
    const src = manifestSource(pki.manifest);
    const se = await src.secureElement(3);
    const serial = pki.manifest.pledges[3]!.serial;
    const send = async (origin: string, pvrBytes: Uint8Array | undefined, seOverride = se) => {
      const link = new RegistrarLink({ origin, secureContext: seOverride.tlsContext('idevid'), retry: { ...DEFAULT_RETRY, capSeconds: 0.5, maxTotalSeconds: 20 } });
      try {
        const chain = await link.connect();
        const bytes = pvrBytes ?? (await buildPvr({ format: 'jws', serial, registrarCert: chain[0]! }, se.signer(se.active('idevid')!.handle))).bytes;
        const res = await link.exchange({ method: 'POST', path: '/.well-known/brski/requestvoucher', body: bytes,
          headers: { 'content-type': VOUCHER_MEDIA_TYPE.jws, accept: VOUCHER_MEDIA_TYPE.jws } });
        return { status: res.status, bytes, text: res.body.toString('utf8') };
      } finally { link.close(); }
    };
    const first = await send(urlA, undefined);
    expect(first.status).toBe(200);
    // Same registrar identity, but a process with its own store: the RVR reaches the MASA, which knows the nonce.
    const port = await freePort();
    const regA2 = new ServiceProcess('registrar', registrarYaml(pki, { port, masaPort, redisUrl: redis.url, prefix: 'e2e:regA2:', domain: 'owner' }));
    await regA2.start();
    try {
      const replay = await send(`https://127.0.0.1:${port}`, first.bytes);
      expect(replay.status).toBeGreaterThanOrEqual(400);
      expect(replay.text).toMatch(/replayed/);
    } finally {
      await regA2.stop();
    }
    // An attacker with its own valid IDevID replays the captured PVR: signer is not the TLS client.
    const attacker = await src.secureElement(4);
    const stolen = await send(urlA, first.bytes, attacker);
    expect(stolen.status).toBeGreaterThanOrEqual(400);
    expect(stolen.text).not.toMatch(/^\s*$/);
  });

  it('brski fleet manufactures pledges through the MASA factory endpoint and onboards them', async () => {
    const r = await runBrski(['fleet', '--registrar', urlA, '--pki', pki.dir, '--factory', `https://127.0.0.1:${masaPort}/factory/idevid`,
      '--serial-prefix', 'E2EFAB', '--count', '6', '--concurrency', '3', '--format', 'mixed', '--json']);
    expect(r.json, r.stdout + r.stderr).toMatchObject({ count: 6, onboarded: 6, failed: 0, byFormat: { cms: { onboarded: 2 }, jws: { onboarded: 2 }, cose: { onboarded: 2 } } });
  });

  async function restartMidFleet(offset: number, signal: NodeJS.Signals): Promise<void> {
    const outcomes = join(tmp.path, `fleet-outcomes-${signal}.json`);
    let progressed!: () => void;
    const started = new Promise<void>((r) => { progressed = r; });
    let doneAtRestart = -1;
    let lastDone = 0;
    const fleet = runBrski(['fleet', '--registrar', urlA, '--pki', pki.dir, '--offset', String(offset), '--count', String(FLEET), '--concurrency', '4',
      '--format', 'mixed', '--retry-cap', '1', '--max-wait', '120', '--transport-retries', '40', '--json', '--outcomes', outcomes], 240_000,
    (stderr) => {
      const all = [...stderr.matchAll(/progress (\d+)\//g)];
      lastDone = Number(all.at(-1)?.[1] ?? 0);
      if (lastDone >= FLEET / 10) progressed();
    });
    await started; // about 10 % onboarded
    doneAtRestart = lastDone;
    await regA.stop(signal);
    await regA.start();
    const r = await fleet;
    expect(doneAtRestart).toBeLessThan(FLEET / 2); // the restart really happened in the middle
    expect(r.json, r.stdout + r.stderr).toMatchObject({ count: FLEET, onboarded: FLEET, failed: 0 });
    const all = JSON.parse(readFileSync(outcomes, 'utf8')) as { outcomes: Array<{ ok: boolean; ldevidSerial: string; serial: string }> };
    const serials = all.outcomes.map((o) => o.ldevidSerial);
    expect(new Set(serials).size).toBe(FLEET);
    expect(new Set(all.outcomes.map((o) => o.serial)).size).toBe(FLEET);
  }

  it('a registrar restart (SIGTERM) in the middle of a fleet loses nothing', () => restartMidFleet(5, 'SIGTERM'), 300_000);

  it('a registrar crash (SIGKILL) in the middle of a fleet loses nothing', () => restartMidFleet(5 + FLEET, 'SIGKILL'), 300_000);
});

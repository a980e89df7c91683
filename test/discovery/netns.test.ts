/**
 * Discovery and join proxy across real links (issue 11): three network namespaces —
 *   pledge [pl0 10.77.1.2] ── [px0 10.77.1.1] proxy [rx0 10.77.2.1] ── [rg0 10.77.2.2] registrar + MASA
 * The pledge has no route to 10.77.2.0/24 (no forwarding, no routes). The registrar announces
 * `_brski-registrar._tcp` on its link; the proxy finds it there by mDNS and announces
 * `_brski-proxy._tcp` on the pledge link. A rogue registrar on the pledge link (its own domain CA)
 * replays a genuine nonceless voucher issued to the real domain: the pledge tries it first
 * (registrars before proxies), rejects it at the pin check, and onboards through the proxy.
 * Skipped, with a printed reason, where namespaces cannot be created.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initDemoPki } from '../../cli/lib/pki-init.ts';
import { makeTempDir, type TempDir } from '../helpers/tmp.ts';
import { Lab, netnsUnavailable, type Proc } from './netns-lab.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const FIX = (f: string): string => join(ROOT, 'test/discovery/fixtures', f);
const why = netnsUnavailable();
if (why) process.stdout.write(`\n[test/discovery/netns] SKIPPED: network namespaces unavailable (${why}); the mDNS + join-proxy onboarding test did not run.\n\n`);

const FORMAT = 'cms';
const PLEDGE = { ns: '', ifc: 'pl0', addr: '10.77.1.2' };
const PROXY_PLEDGE_SIDE = { ifc: 'px0', addr: '10.77.1.1' };
const PROXY_REGISTRAR_SIDE = { ifc: 'rx0', addr: '10.77.2.1' };
const REGISTRAR = { ifc: 'rg0', addr: '10.77.2.2', port: 8443 };
const MASA_PORT = 9443;
const PROXY_PORT = 4443;

describe.skipIf(why !== undefined)('netns: pledge discovers a join proxy by mDNS, abandons a rogue registrar, onboards', () => {
  let lab: Lab;
  let tmp: TempDir;
  let proxy: Proc;
  let rogue: Proc;
  let pledgeOut: Array<Record<string, unknown>> = [];
  let serial: string;

  beforeAll(async () => {
    lab = new Lab();
    tmp = makeTempDir('brski-netns-');
    try {
      const p = lab.ns('pledge');
      const x = lab.ns('proxy');
      const r = lab.ns('registrar');
      PLEDGE.ns = p;
      lab.link(p, PLEDGE.ifc, `${PLEDGE.addr}/24`, x, PROXY_PLEDGE_SIDE.ifc, `${PROXY_PLEDGE_SIDE.addr}/24`);
      lab.link(x, PROXY_REGISTRAR_SIDE.ifc, `${PROXY_REGISTRAR_SIDE.addr}/24`, r, REGISTRAR.ifc, `${REGISTRAR.addr}/24`);

      const pki = await initDemoPki({ out: join(tmp.path, 'pki'), devices: 1, masaPort: MASA_PORT, registrarPort: REGISTRAR.port });
      serial = pki.pledges[0]!.serial;
      // The registrar listens on its link address (the proxy's upstream), the MASA stays on localhost.
      const reg = parse(readFileSync(pki.registrarConfig, 'utf8')) as { listen: { host: string } };
      reg.listen.host = REGISTRAR.addr;
      writeFileSync(pki.registrarConfig, stringify(reg));

      const masa = lab.run(r, 'cli/brski.ts', ['masa', '--config', pki.masaConfig], ROOT);
      await masa.waitFor((o) => o['msg'] === 'MASA listening', 30_000);
      const registrar = lab.run(r, FIX('registrar-main.ts'), [pki.registrarConfig, REGISTRAR.ifc, 'example-domain-registrar'], ROOT);
      await registrar.waitFor((o) => o['ready'] === true, 30_000);

      // The voucher that will leak: genuine, nonceless, issued to the real domain's registrar.
      const voucherFile = join(tmp.path, 'leaked-voucher.bin');
      const obtain = lab.run(r, FIX('nonceless-voucher.ts'), [pki.dir, serial, FORMAT, String(MASA_PORT), voucherFile], ROOT);
      await obtain.waitFor((o) => o['ok'] === true, 30_000);

      proxy = lab.run(x, 'cli/brski.ts', ['proxy', '--listen', `${PROXY_PLEDGE_SIDE.addr}:${PROXY_PORT}`, '--pledge-interface', PROXY_PLEDGE_SIDE.ifc,
        '--registrar-interface', PROXY_REGISTRAR_SIDE.ifc, '--name', 'test-join-proxy', '--json'], ROOT);
      await proxy.waitFor((o) => o['event'] === 'ready', 30_000);
      rogue = lab.run(p, FIX('rogue-registrar.ts'), [voucherFile, FORMAT, PLEDGE.ifc, PLEDGE.addr], ROOT);
      await rogue.waitFor((o) => o['ready'] === true, 30_000);

      const pledge = lab.run(p, FIX('pledge-main.ts'), [pki.dir, serial, FORMAT, PLEDGE.ifc, `${REGISTRAR.addr}:${REGISTRAR.port}`], ROOT);
      await pledge.waitFor((o) => 'result' in o || 'failure' in o, 60_000);
      pledgeOut = pledge.lines.flatMap((l) => { try { return [JSON.parse(l) as Record<string, unknown>]; } catch { return []; } });
    } catch (e) {
      await lab.destroy();
      tmp.cleanup();
      throw e;
    }
  }, 120_000);

  afterAll(async () => {
    await lab?.destroy();
    tmp?.cleanup();
  });

  const line = <K extends string>(key: K) => pledgeOut.find((o) => key in o)?.[key];
  const events = () => pledgeOut.filter((o) => 'event' in o).map((o) => o['event'] as { step: string; ok: boolean; detail: string; registrar?: string });
  const rogueUrl = () => `https://${PLEDGE.addr}:${(rogue.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => o['ready'])!)['port']}`;
  const proxyUrl = `https://${PROXY_PLEDGE_SIDE.addr}:${PROXY_PORT}`;

  it('the pledge has no route to the registrar', () => {
    expect(line('noRoute')).toMatch(/ENETUNREACH|EHOSTUNREACH|timeout/);
  });

  it('discovery found the rogue registrar and the proxy on the pledge link, and nothing from the registrar link', () => {
    const candidates = line('candidates') as string[];
    expect(candidates).toEqual([rogueUrl(), proxyUrl]);
    expect(candidates.some((c) => c.includes('10.77.2.'))).toBe(false);
  });

  it('the rogue was tried first and abandoned at the pin check, after a voucher that verified', () => {
    const rogueEvents = events().filter((e) => e.registrar === rogueUrl());
    expect(rogueEvents.find((e) => e.step === 'voucher')?.ok).toBe(true);
    const pin = rogueEvents.find((e) => e.step === 'pin');
    expect(pin?.ok).toBe(false);
    expect(pin?.detail).toMatch(/registrar-pin-mismatch/);
    expect(rogueEvents.find((e) => e.step === 'registrar')?.detail).toMatch(/abandoned: registrar-pin-mismatch/);
    // The pledge told the rogue it refused the voucher (voucher_status false) and asked it for nothing else.
    const rogueReqs = rogue.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((o) => o['event'] === 'request');
    expect(rogueReqs.map((o) => o['path'])).toEqual(['/.well-known/brski/requestvoucher', '/.well-known/brski/voucher_status']);
    expect(JSON.parse(String(rogueReqs[1]!['body'])) as Record<string, unknown>).toMatchObject({ status: false });
  });

  it('the pledge onboarded through the proxy with a nonced voucher from the real domain', () => {
    const result = line('result') as { registrar: string; attempts: number; ldevidIssuer: string } | undefined;
    expect(line('failure')).toBeUndefined();
    expect(result?.registrar).toBe(proxyUrl);
    expect(result?.attempts).toBe(2);
    expect(result?.ldevidIssuer).toContain('Example Domain CA');
    const viaProxy = events().filter((e) => e.registrar === proxyUrl);
    expect(viaProxy.find((e) => e.step === 'pin')?.ok).toBe(true);
    expect(viaProxy.find((e) => e.step === 'enroll')?.ok).toBe(true);
  });

  it('the proxy found the registrar by mDNS on its registrar link and relayed the circuits', () => {
    const opened = proxy.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((o) => o['event'] === 'open');
    expect(opened.length).toBeGreaterThanOrEqual(2); // provisional session + the LDevID session for enrollstatus
    for (const o of opened) {
      expect(o['registrar']).toBe(`${REGISTRAR.addr}:${REGISTRAR.port}`);
      expect(String(o['pledge'])).toContain(PLEDGE.addr);
    }
    expect(proxy.lines.some((l) => l.includes('"refused"'))).toBe(false);
  });
});

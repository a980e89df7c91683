/**
 * End to end, cBRSKI: the real MASA and a registrar with its CoAPS listener enabled, each a
 * `brski masa|registrar --config` process (in-memory stores), and constrained pledges — a
 * `brski fleet --transport coaps` process and in-process `onboardConstrained` — that onboard over
 * DTLS + CoAP through the registrar to the MASA: COSE PVR with proximity-registrar-pubk-sha256,
 * COSE voucher pinning what the MASA's policy says (domain CA by default, the registrar's own
 * certificate with `voucher.pin: registrar`), LDevID, enrollstatus over an LDevID session.
 */
import { freeUdpPort } from '../helpers/ports.ts';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { DtlsClient } from '../../pledge-sim/src/coaps/dtls-client.ts';
import { constrainedIdentityFrom } from '../../pledge-sim/src/coaps/fleet.ts';
import { onboardConstrained } from '../../pledge-sim/src/coaps/pledge.ts';
import { isPledgeFailure } from '../../pledge-sim/src/pledge/errors.ts';
import { manufacturerTrust } from '../../pledge-sim/src/fleet/sources.ts';
import { ensureDtlsAddon } from '../../registrar/test/coap/harness.ts';
import { makeTempDir, type TempDir } from '../helpers/tmp.ts';
import {
  ServiceProcess, createE2ePki, freePort, masaYaml, parseCertificatesPem, registrarYaml, runBrski, unknownManufacturerPledge, type E2ePki,
} from './helpers/stack.ts';

const FLEET = 6;
let tmp: TempDir;
let pki: E2ePki;
let masa: ServiceProcess;
let registrar: ServiceProcess;
let masaPort: number;
let coapsPort: number;
let adminPort: number;
let adminToken: string;

type Doc = Record<string, any>;
const edit = (file: string, f: (d: Doc) => void): string => {
  const d = parse(readFileSync(file, 'utf8')) as Doc;
  f(d);
  writeFileSync(file, stringify(d), { mode: 0o600 });
  return file;
};

/** A UDP port nobody holds right now. */
/** The registrar opens its UDP listener after its HTTPS port: wait until a DTLS handshake completes. */
async function waitForCoaps(port: number, timeoutMs = 30_000): Promise<void> {
  const id = constrainedIdentityFrom(pki.manifest, 0);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      (await DtlsClient.connect({ host: '127.0.0.1', port, certChain: id.idevidChainPem, key: id.idevidKeyPem, handshakeTimeoutMs: 1000 })).close();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`CoAPS listener on ${port} not up: ${(e as Error).message}\n${registrar.output.join('')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function startMasa(pin: 'domain-ca' | 'registrar'): Promise<number> {
  const file = edit(masaYaml(pki, masaPort, 'redis://127.0.0.1:1', 'unused:'), (d) => {
    d['store'] = { type: 'memory' };
    d['voucher'] = { ...d['voucher'], pin };
  });
  masa = new ServiceProcess('masa', file);
  return masa.start();
}

/** GET on the registrar's admin API (bearer token, TLS anchored at the domain CA). */
function admin(path: string): Promise<any> {
  return new Promise((res, rej) => {
    const req = httpsRequest({
      host: '127.0.0.1', port: adminPort, path, method: 'GET', headers: { authorization: `Bearer ${adminToken}` },
      ca: readFileSync(pki.manifest.domainCa.cert), checkServerIdentity: () => undefined,
    }, (r) => {
      let body = '';
      r.on('data', (d: Buffer) => { body += d.toString(); });
      r.on('end', () => (r.statusCode === 200 ? res(JSON.parse(body)) : rej(new Error(`${path}: ${r.statusCode} ${body}`))));
    });
    req.on('error', rej);
    req.end();
  });
}

const pledgeOptions = (index: number) => ({
  ...constrainedIdentityFrom(pki.manifest, index), host: '127.0.0.1', port: coapsPort, trust: manufacturerTrust(pki.manifest), maxWaitSeconds: 60,
});

beforeAll(async () => {
  ensureDtlsAddon();
  tmp = makeTempDir('brski-e2e-coaps-');
  pki = await createE2ePki(tmp.path, FLEET + 6);
  masaPort = await freePort();
  [coapsPort, adminPort] = [await freeUdpPort(), await freePort()];
  const regFile = edit(registrarYaml(pki, { port: await freePort(), masaPort, redisUrl: 'redis://127.0.0.1:1', prefix: 'unused:', domain: 'owner' }), (d) => {
    d['store'] = { type: 'memory' };
    d['coaps'] = { enabled: true, host: '127.0.0.1', port: coapsPort };
    d['admin'] = { ...d['admin'], port: adminPort };
  });
  const reg = parse(readFileSync(regFile, 'utf8')) as Doc;
  adminToken = readFileSync(resolve(dirname(regFile), reg['admin']['token_file'] as string), 'utf8').trim();
  await startMasa('domain-ca');
  registrar = new ServiceProcess('registrar', regFile);
  await registrar.start();
  await waitForCoaps(coapsPort);
}, 180_000);

afterAll(async () => {
  await registrar?.stop();
  await masa?.stop();
  tmp?.cleanup();
});

describe('e2e cBRSKI (CoAPS registrar and MASA as processes)', () => {
  it('brski fleet --transport coaps onboards constrained pledges through the registrar to the MASA', async () => {
    const outcomes = join(tmp.path, 'coaps-outcomes.json');
    const r = await runBrski(['fleet', '--transport', 'coaps', '--registrar', `coaps://127.0.0.1:${coapsPort}`, '--pki', pki.dir,
      '--offset', '1', '--count', String(FLEET), '--concurrency', '3', '--json', '--outcomes', outcomes]);
    expect(r.json, r.stdout + r.stderr).toMatchObject({ count: FLEET, onboarded: FLEET, failed: 0, format: 'cose', byFormat: { cose: { onboarded: FLEET } } });
    expect(r.json.latency.total.count).toBe(FLEET);
    expect(r.json.latency.total.p99).toBeGreaterThan(0);
    const list = (JSON.parse(readFileSync(outcomes, 'utf8')) as { outcomes: Array<{ serial: string; ok: boolean; ldevidSerial: string }> }).outcomes;
    expect(list.map((o) => o.serial)).toEqual(pki.manifest.pledges.slice(1, 1 + FLEET).map((p) => p.serial));
    // The registrar's view: enrolled with that LDevID, enrollstatus over the LDevID session.
    const one = list[0]!;
    const view = await admin(`/admin/pledges/${encodeURIComponent(one.serial)}`);
    expect(view.pledge).toMatchObject({ state: 'enrolled', voucherFormat: 'cose', currentCertificate: one.ldevidSerial.toUpperCase() });
    expect(view.pledge.enrollStatus).toMatchObject({ status: true, authenticated: true });
    expect(view.events.filter((e: any) => e.type === 'enroll-status').map((e: any) => e.detail.via)).toEqual(['ldevid']);
  }, 120_000);

  it('the MASA voucher pins the domain CA (policy domain-ca); the pledge validates the DTLS chain with it and enrolls', async () => {
    const i = FLEET + 1;
    const r = await onboardConstrained(pledgeOptions(i));
    const domainCa = parseCertificatesPem(readFileSync(pki.manifest.domainCa.cert, 'utf8'))[0]!;
    expect(r.voucher.serialNumber).toBe(pki.manifest.pledges[i]!.serial);
    // The MASA's assertion names its ownership decision (first-use → logged), not the proximity it checked.
    expect(r.voucher.assertion).toBe('logged');
    expect(r.pin.kind).toBe('cert');
    expect(r.pin.kind === 'cert' && r.pin.cert.raw.equals(domainCa.raw)).toBe(true);
    expect(r.voucher.pinnedDomainPubk).toBeUndefined();
    expect(r.ldevid.checkIssued(domainCa) && r.ldevid.verify(domainCa.publicKey)).toBe(true);
    expect(r.enrollStatus).toMatchObject({ sent: true, via: 'ldevid' });
  }, 60_000);

  it('refuses an IDevID from an unknown manufacturer over CoAPS', async () => {
    const u = await unknownManufacturerPledge(tmp.path, 'ROGUE-COAPS-1');
    const chainPem = readFileSync(u.cert, 'utf8');
    const idevid = new X509Certificate(chainPem);
    const keyPem = readFileSync(u.key, 'utf8');
    const err = await onboardConstrained({
      host: '127.0.0.1', port: coapsPort, serial: 'ROGUE-COAPS-1', idevid, idevidChainPem: chainPem, idevidKeyPem: keyPem,
      signer: new SoftwareSigner(createPrivateKey(keyPem), [idevid]), trust: manufacturerTrust(pki.manifest),
    }).catch((e: unknown) => e);
    expect(isPledgeFailure(err) && err.reason, String(err)).toBe('voucher-refused');
    expect((err as Error).message).toMatch(/4\.0[13].*manufacturer/);
  }, 60_000);

  // digest §6.4: pinning the registrar EE for a pledge that named the registrar by key (cBRSKI
  // proximity-registrar-pubk[-sha256]) pins the key itself (pinned-domain-pubk), and the pledge
  // checks it against the DTLS peer key.
  it('with MASA policy voucher.pin: registrar the voucher pins the registrar key, and the pledge accepts it', async () => {
    await masa.stop();
    await startMasa('registrar');
    const i = FLEET + 2;
    const r = await onboardConstrained(pledgeOptions(i));
    const registrarCert = parseCertificatesPem(readFileSync(pki.manifest.registrar.cert, 'utf8'))[0]!;
    const registrarSpki = registrarCert.publicKey.export({ type: 'spki', format: 'der' });
    expect(r.pin.kind === 'pubk' && Buffer.from(r.pin.spki).equals(registrarSpki), JSON.stringify(r.pin.kind)).toBe(true);
    expect(r.registrarChain[0]!.raw.equals(registrarCert.raw)).toBe(true);
    // The pinned end-entity certificate is no CA: the pledge fetched /crts to chain its LDevID.
    expect(r.domainCerts.some((c) => c.ca)).toBe(true);
    expect(r.enrollStatus.sent).toBe(true);
  }, 90_000);
});

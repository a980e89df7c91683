import { generateKeyPairSync, type X509Certificate } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SoftwareSigner } from '@brski/shared/crypto/software-signer';
import { verifyChain } from '@brski/shared/pki/chain';
import { issueCertificate } from '@brski/shared/pki/certificate';
import { idevidProfile } from '@brski/shared/pki/profiles';
import type { VoucherFormat } from '@brski/shared/media';
import { Pledge, type PledgeConfig, type PledgeEvent } from '../../src/pledge/pledge.ts';
import { PledgeFailure, type PledgeFailureReason } from '../../src/pledge/errors.ts';
import { createDomain, createManufacturer, manufacturePledge, type Domain, type Manufacturer } from '../helpers/fixture-pki.ts';
import { startFakeRegistrar, type FakeKnobs, type FakeRegistrar } from '../helpers/fake-registrar.ts';

let m: Manufacturer;
let domain: Domain;
let other: Domain;
/** Another device's IDevID key and chain: a valid path to the manufacturer root, but not a MASA. */
let otherDevice: SoftwareSigner;
const running: FakeRegistrar[] = [];
let n = 0;

beforeAll(async () => {
  m = await createManufacturer();
  domain = await createDomain('Owner');
  other = await createDomain('Intruder');
  const k = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const idevid = await issueCertificate(idevidProfile('SN-other-device', 'masa.example:9443', k.publicKey), { signer: m.idevidCaSigner, certificate: m.idevidCa });
  otherDevice = new SoftwareSigner(k.privateKey, [idevid, m.idevidCa, m.root]);
});
afterEach(async () => { await Promise.all(running.splice(0).map((r) => r.close())); });

async function registrar(knobs: FakeKnobs = {}, d: Domain = domain): Promise<FakeRegistrar> {
  const r = await startFakeRegistrar(m, d, knobs);
  running.push(r);
  return r;
}

/** Trust as a pledge stores it: the MASA signing certificate only (digest §8.6), not the manufacturer root. */
function trust(): X509Certificate[] { return [m.masa.certificates[0]!]; }

async function pledge(registrars: string[], format: VoucherFormat = 'jws', extra: Partial<PledgeConfig> = {}) {
  const se = await manufacturePledge(m, `SN-${++n}`);
  const events: PledgeEvent[] = [];
  const p = new Pledge({
    se, registrars, format, trust: trust(), retry: { capSeconds: 0.02, defaultSeconds: 0.01, transportRetries: 1 },
    onEvent: (e) => events.push(e), ...extra,
  });
  return { se, p, events };
}

async function failure(promise: Promise<unknown>): Promise<PledgeFailure> {
  try { await promise; } catch (e) { if (e instanceof PledgeFailure) return e; throw e; }
  throw new Error('expected a PledgeFailure');
}

describe('pledge onboarding', () => {
  for (const format of ['jws', 'cms', 'cose'] as const) {
    it(`onboards with a ${format} voucher: LDevID from the domain CA installed, telemetry sent, one IDevID session`, async () => {
      const r = await registrar();
      const { se, p } = await pledge([r.origin], format);
      const result = await p.onboard();
      expect(se.state).toBe('enrolled');
      const ldevid = se.active('ldevid')!.chain[0]!;
      expect(ldevid.fingerprint256).toBe(result.ldevid.fingerprint256);
      expect(verifyChain(ldevid, [], [domain.ca]).length).toBe(2);
      expect(result.voucher.serialNumber).toBe(p.serial);
      expect(r.recorded.voucherStatus).toEqual([{ version: 1, status: true }]);
      expect(r.recorded.enrollStatus).toHaveLength(1);
      expect(r.recorded.enrollStatus[0]!.body).toEqual({ version: 1, status: true });
      expect(r.recorded.enrollStatus[0]!.clientCert).toBe(ldevid.subject); // reported over an LDevID session
      // keep-alive: voucher + EST on one IDevID connection, then one LDevID connection; never SNI
      expect(r.recorded.connections).toHaveLength(2);
      expect(r.recorded.connections.every((c) => !c.servername)).toBe(true);
      expect(r.recorded.paths).toEqual(['/.well-known/brski/requestvoucher', '/.well-known/brski/voucher_status',
        '/.well-known/est/cacerts', '/.well-known/est/csrattrs', '/.well-known/est/simpleenroll', '/.well-known/brski/enrollstatus']);
      expect(result.timings.voucher).toBeGreaterThan(0);
    });
  }

  it('resends the identical PVR on every 202 and then onboards', async () => {
    const r = await registrar({ pending: 2, retryAfter: '30' });
    const { p } = await pledge([r.origin]);
    await p.onboard(); // a 30 s Retry-After is capped at 0.02 s here
    expect(r.recorded.pvrs).toHaveLength(3);
    expect(r.recorded.pvrs[1]!.equals(r.recorded.pvrs[0]!)).toBe(true);
    expect(r.recorded.pvrs[2]!.equals(r.recorded.pvrs[0]!)).toBe(true);
  });

  it('uses a fresh nonce for each new attempt', async () => {
    const r1 = await registrar({ refuse: 404 });
    const { p } = await pledge([r1.origin, r1.origin]);
    await failure(p.onboard());
    expect(r1.recorded.pvrs).toHaveLength(2);
    expect(r1.recorded.pvrs[0]!.equals(r1.recorded.pvrs[1]!)).toBe(false);
  });

  it('comes back after a refusal with a new attempt (new PVR, new nonce) only when refusalRetries allows', async () => {
    const r = await registrar({ refuse: 403 });
    const { p, events } = await pledge([r.origin], 'jws', { refusalRetries: 2 });
    const f = await failure(p.onboard());
    expect(f.reason).toBe('voucher-refused');
    expect(r.recorded.pvrs).toHaveLength(3);
    const distinct = new Set(r.recorded.pvrs.map((b) => b.toString('base64')));
    expect(distinct.size).toBe(3); // a refused PVR is never resent
    expect(events.filter((e) => e.step === 'retry' && /refused, new attempt/.test(e.detail))).toHaveLength(2);
    const r2 = await registrar({ refuse: 403 });
    const { p: once } = await pledge([r2.origin]);
    await failure(once.onboard());
    expect(r2.recorded.pvrs).toHaveLength(1); // default: a refusal ends the attempt
  });

  it('re-enrolls with a new SE key and retires the old LDevID', async () => {
    const r = await registrar();
    const { se, p } = await pledge([r.origin]);
    const first = (await p.onboard()).ldevid;
    const second = await p.reenroll();
    expect(second.fingerprint256).not.toBe(first.fingerprint256);
    expect(second.publicKey.equals(first.publicKey)).toBe(false);
    expect(se.active('ldevid')!.chain[0]!.fingerprint256).toBe(second.fingerprint256);
    expect(se.credentials().filter((c) => c.handle.slot === 'ldevid').map((c) => c.status)).toEqual(['retired', 'active']);
    expect(r.recorded.paths.at(-1)).toBe('/.well-known/est/simplereenroll');
  });
});

describe('pledge voucher checks (each abandons the registrar with a named reason)', () => {
  const cases: Array<[string, FakeKnobs | (() => FakeKnobs), PledgeFailureReason]> = [
    ['wrong nonce', { mutate: (v) => { v.nonce = new Uint8Array(16).fill(7); } }, 'voucher-nonce-mismatch'],
    ['no nonce', { mutate: (v) => { delete v.nonce; v.expiresOn = new Date(Date.now() + 60_000).toISOString(); } }, 'voucher-nonce-missing'],
    ['wrong serial', { mutate: (v) => { v.serialNumber = 'SN-someone-else'; } }, 'voucher-serial-mismatch'],
    ['wrong idevid-issuer', { mutate: (v) => { v.idevidIssuer = Uint8Array.from([0x04, 0x18, 0x30, 0x16, 0x80, 0x14, ...new Uint8Array(20).fill(1)]); } }, 'voucher-idevid-issuer-mismatch'],
    ['no pin', { mutate: (v) => { delete v.pinnedDomainCert; } }, 'voucher-no-pin'],
    ['expired', { mutate: (v) => { v.expiresOn = new Date(Date.now() - 60_000).toISOString(); } }, 'voucher-expired'],
    ['created-on a day ahead', { mutate: (v) => { v.createdOn = new Date(Date.now() + 86_400_000).toISOString(); } }, 'voucher-not-yet-valid'],
    ['domain-cert-revocation-checks true', { mutate: (v) => { v.domainCertRevocationChecks = true; } }, 'voucher-revocation-unchecked'],
    ['unacceptable assertion', { mutate: (v) => { v.assertion = 'agent-proximity'; } }, 'voucher-assertion'],
    ['bad signature (unknown signer)', () => {
      const k = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      return { signWith: new SoftwareSigner(k, m.masa.certificates) };
    }, 'voucher-signature'],
    ['pin of another domain', () => ({ pinCert: other.ca }), 'registrar-pin-mismatch'],
  ];
  for (const [name, knobs, reason] of cases) {
    for (const format of ['jws', 'cose'] as const) {
      it(`${name} (${format}) → ${reason}, voucher_status false, SE stays manufactured`, async () => {
        const r = await registrar(typeof knobs === 'function' ? knobs() : knobs);
        const { se, p } = await pledge([r.origin], format);
        const f = await failure(p.onboard());
        expect(f.reason).toBe(reason);
        expect(se.state).toBe('manufactured');
        expect(r.recorded.voucherStatus).toHaveLength(1);
        expect(r.recorded.voucherStatus[0]).toMatchObject({ version: 1, status: false });
        expect(r.recorded.paths.some((x) => x.startsWith('/.well-known/est/'))).toBe(false);
      });
    }
  }

  for (const format of ['jws', 'cms', 'cose'] as const) {
    it(`refuses a ${format} voucher signed by another device's IDevID (chains to the manufacturer root, not the MASA)`, async () => {
      const r = await registrar({ signWith: otherDevice });
      const { se, p } = await pledge([r.origin], format);
      const f = await failure(p.onboard());
      expect(f.reason).toBe('voucher-signature');
      expect(se.state).toBe('manufactured');
      expect(r.recorded.voucherStatus[0]).toMatchObject({ status: false });
    });

    it(`accepts a ${format} voucher that carries no certificate, verified with the pre-stored MASA signer`, async () => {
      // JWS: no x5c (signer without certificates); CMS: no certificates field; COSE: no x5bag.
      const r = await registrar(format === 'cms' ? { omitCertificates: true } : { signWith: m.masa.withCertificates([]) });
      const { se, p } = await pledge([r.origin], format);
      await p.onboard();
      expect(se.state).toBe('enrolled');
    });
  }

  it('abandons a registrar of another domain and onboards through the next one', async () => {
    // The MASA pins the owner's domain, but this registrar's TLS certificate is another domain's.
    const intruder = await registrar({ pinCert: domain.ca }, other);
    const good = await registrar();
    const { se, p, events } = await pledge([intruder.origin, good.origin], 'cms');
    const result = await p.onboard();
    expect(result.registrar).toBe(good.origin);
    expect(se.state).toBe('enrolled');
    expect(intruder.recorded.voucherStatus[0]).toMatchObject({ status: false });
    expect(events.some((e) => e.step === 'registrar' && !e.ok && e.registrar === intruder.origin)).toBe(true);
  });

  it('names the last failure and lists the earlier ones when every registrar fails', async () => {
    const a = await registrar({ refuse: 403 });
    const b = await registrar({ refuse: 415 });
    const { p } = await pledge([a.origin, b.origin]);
    const f = await failure(p.onboard());
    expect(f.reason).toBe('voucher-format-unsupported');
    expect(f.previous).toEqual([{ registrar: a.origin, reason: 'voucher-refused' }]);
  });

  it('follows at most one redirect', async () => {
    const target = await registrar();
    const hop2 = await registrar({ redirectTo: target.origin });
    const hop1 = await registrar({ redirectTo: hop2.origin });
    const { p } = await pledge([hop1.origin]);
    expect((await failure(p.onboard())).reason).toBe('too-many-redirects');
    const { p: p2, se } = await pledge([hop2.origin]);
    await p2.onboard();
    expect(se.state).toBe('enrolled');
  });

  it('reports an unreachable registrar by name after its retries', async () => {
    const r = await registrar();
    const origin = r.origin;
    await r.close();
    running.splice(running.indexOf(r), 1);
    const { p } = await pledge([origin]);
    expect((await failure(p.onboard())).reason).toBe('registrar-unreachable');
  });
});

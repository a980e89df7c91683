/**
 * Constrained pledges onboard over CoAPS through the registrar to the (test) MASA and receive
 * LDevIDs, report enrollstatus over a new LDevID-authenticated DTLS session and re-enroll over
 * `/sren`; a voucher pinning another domain is refused at the pin check on the DTLS peer, and a
 * pledge that does not trust the MASA refuses the voucher.
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoapsWorld, type CoapsWorld } from '../../../registrar/test/coap/harness.ts';
import { reenrollConstrained } from '../../src/coaps/est.ts';
import { onboardConstrained, type ConstrainedPledgeOptions } from '../../src/coaps/pledge.ts';
import { isPledgeFailure } from '../../src/pledge/errors.ts';

let w: CoapsWorld;
beforeAll(async () => { w = await startCoapsWorld({ devices: 8 }); }, 60_000);
afterAll(async () => { await w?.stop(); });

function options(index: number, trust?: X509Certificate[]): ConstrainedPledgeOptions {
  const p = w.fx.pledges[index]!;
  return {
    host: '127.0.0.1', port: w.port, serial: p.serial, idevid: p.cert, idevidChainPem: w.chainPem(p), idevidKeyPem: p.keyPem, signer: p.signer,
    trust: trust ?? [new X509Certificate(w.fx.pem('masa-signer.pem'))], // voucher anchor only (digest §8.6)
  };
}

describe('constrained pledge over CoAPS', () => {
  it('three pledges onboard concurrently and get LDevIDs from the domain CA', async () => {
    const results = await Promise.all([0, 1, 2].map((i) => onboardConstrained(options(i))));
    for (const [i, r] of results.entries()) {
      const p = w.fx.pledges[i]!;
      expect(r.voucher.serialNumber).toBe(p.serial);
      expect(r.ldevid.verify(w.reg.ca.certificate.publicKey)).toBe(true);
      expect(r.ldevid.subject).toContain(p.serial);
      const stored = await w.reg.store.getPledge(p.serial);
      expect(stored?.state).toBe('enrolled');
      expect(stored?.enrollStatus?.status).toBe(true);
      // §2.1(j): the success report came over a session authenticated with the new LDevID.
      expect(r.enrollStatus).toMatchObject({ sent: true, via: 'ldevid', code: '2.04' });
      expect(stored?.enrollStatus?.authenticated).toBe(true);
      const events = await w.reg.store.pledgeEvents(p.serial);
      expect(events.filter((e) => e.type === 'enroll-status').map((e) => e.detail?.['via'])).toEqual(['ldevid']);
      expect(r.timings.total).toBeGreaterThanOrEqual(r.timings.tls + r.timings.voucher);
    }
    expect(w.masa.lastRvr?.format).toBe('cose');
    await expect.poll(() => w.coaps.dtls.sessionCount).toBe(0);
  });

  // The registrar already refuses a MASA voucher that does not pin it (5.02 to the pledge); the
  // pledge's own pin check is pledge-sim's validateRegistrarChain, exercised in its unit tests.
  it('fails cleanly when the MASA pins another domain', async () => {
    w.masa.mode = { kind: 'wrong-pin' };
    try {
      const err = await onboardConstrained(options(3)).catch((e: unknown) => e);
      expect(isPledgeFailure(err) && err.reason).toBe('voucher-refused');
      expect((err as Error).message).toContain('5.02');
    } finally { w.masa.mode = { kind: 'ok' }; }
  });

  it('refuses a voucher it cannot verify with its manufacturer trust', async () => {
    const other = await w.fx.foreignRegistrarCert();
    const err = await onboardConstrained(options(4, [other])).catch((e: unknown) => e);
    expect(isPledgeFailure(err) && err.reason).toBe('voucher-signature');
  });

  it('with the LDevID session turned off, reports enrollstatus on the IDevID session', async () => {
    const r = await onboardConstrained({ ...options(5), enrollStatusOverLdevid: false });
    expect(r.enrollStatus).toMatchObject({ sent: true, via: 'idevid' });
    const events = await w.reg.store.pledgeEvents(w.fx.pledges[5]!.serial);
    expect(events.filter((e) => e.type === 'enroll-status').map((e) => e.detail?.['via'])).toEqual(['idevid']);
  });

  it('re-enrolls over /sren with the LDevID; the superseded LDevID and an IDevID session are refused', async () => {
    const p = w.fx.pledges[6]!;
    const first = await onboardConstrained(options(6));
    const reenroll = { host: '127.0.0.1', port: w.port, ldevidChainPem: first.ldevidChainPem, ldevidKeyPem: first.ldevidKeyPem, domainCerts: first.domainCerts };
    const next = await reenrollConstrained(reenroll);
    expect(next.ldevid.serialNumber).not.toBe(first.ldevid.serialNumber);
    expect(next.ldevid.verify(w.reg.ca.certificate.publicKey)).toBe(true);
    expect(next.ldevid.subject).toContain(p.serial);
    const oldRec = await w.reg.store.getCertificate(first.ldevid.serialNumber.toUpperCase());
    expect(oldRec?.supersededBy).toBe(next.ldevid.serialNumber.toUpperCase());
    expect((await w.reg.store.getPledge(p.serial))?.currentCertificate).toBe(next.ldevid.serialNumber.toUpperCase());

    // The old LDevID no longer re-enrolls (superseded: 4.03).
    const again = await reenrollConstrained(reenroll).catch((e: unknown) => e);
    expect(isPledgeFailure(again) && again.reason).toBe('enroll-refused');
    expect((again as Error).message).toContain('4.03');
    // An IDevID is not an LDevID of this domain: 4.01.
    const idevid = await reenrollConstrained({ ...reenroll, ldevidChainPem: w.chainPem(p), ldevidKeyPem: p.keyPem }).catch((e: unknown) => e);
    expect(isPledgeFailure(idevid) && idevid.reason).toBe('enroll-refused');
    expect((idevid as Error).message).toContain('4.01');
  });

  it('refuses to re-enroll with a registrar the domain CA set does not vouch for', async () => {
    const first = await onboardConstrained(options(7));
    // A real CA, but not the one behind the registrar's DTLS certificate.
    const otherCa = new X509Certificate(w.fx.pem('manufacturer-ca.pem'));
    expect(otherCa.ca).toBe(true);
    const err = await reenrollConstrained({
      host: '127.0.0.1', port: w.port, ldevidChainPem: first.ldevidChainPem, ldevidKeyPem: first.ldevidKeyPem, domainCerts: [otherCa],
    }).catch((e: unknown) => e);
    expect(isPledgeFailure(err) && err.reason).toBe('registrar-pin-mismatch');
  });
});

describe('constrained pledge with the audit-log policy enforced', () => {
  let e: CoapsWorld;
  beforeAll(async () => {
    e = await startCoapsWorld({ devices: 1, overrides: (c) => {
      c.auditPolicy = { mode: 'enforce', allowDomainIds: [], requireNonce: true, attempts: 2, retryDelayMs: 20, retryAfter: 1 };
    } });
  }, 60_000);
  afterAll(async () => { await e?.stop(); });

  it('resends the identical /sen after the 5.03 + Max-Age the registrar answers while it checks the audit log', async () => {
    const p = e.fx.pledges[0]!;
    const r = await onboardConstrained({
      host: '127.0.0.1', port: e.port, serial: p.serial, idevid: p.cert, idevidChainPem: e.chainPem(p), idevidKeyPem: p.keyPem, signer: p.signer,
      trust: [new X509Certificate(e.fx.pem('masa-signer.pem'))],
    });
    expect(r.ldevid.verify(e.reg.ca.certificate.publicKey)).toBe(true);
    const stored = await e.reg.store.getPledge(p.serial);
    expect(stored?.state).toBe('enrolled');
    expect(stored?.audit?.status).toBe('passed');
  });
});

/**
 * Constrained pledges onboard over CoAPS through the registrar to the (test) MASA and receive
 * LDevIDs; a voucher pinning another domain is refused at the pin check on the DTLS peer, and a
 * pledge that does not trust the MASA refuses the voucher.
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoapsWorld, type CoapsWorld } from '../../../registrar/test/coap/harness.ts';
import { onboardConstrained, type ConstrainedPledgeOptions } from '../../src/coaps/pledge.ts';
import { isPledgeFailure } from '../../src/pledge/errors.ts';

let w: CoapsWorld;
beforeAll(async () => { w = await startCoapsWorld({ devices: 5 }); }, 60_000);
afterAll(async () => { await w?.stop(); });

function options(index: number, trust?: X509Certificate[]): ConstrainedPledgeOptions {
  const p = w.fx.pledges[index]!;
  return {
    host: '127.0.0.1', port: w.port, serial: p.serial, idevid: p.cert, idevidChainPem: w.chainPem(p), idevidKeyPem: p.keyPem, signer: p.signer,
    trust: trust ?? [new X509Certificate(w.fx.pem('manufacturer-ca.pem')), new X509Certificate(w.fx.pem('masa-signer.pem'))],
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
});

/**
 * The constrained fleet runner: report shape and percentiles like the HTTPS fleet, failures
 * counted by reason, and the coaps:// URL rules of `brski fleet --transport coaps`.
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCoapsWorld, type CoapsWorld } from '../../../registrar/test/coap/harness.ts';
import { parseCoapsUrl, runConstrainedFleet } from '../../src/coaps/fleet.ts';

let w: CoapsWorld;
beforeAll(async () => { w = await startCoapsWorld({ devices: 4 }); }, 60_000);
afterAll(async () => { await w?.stop(); });

describe('runConstrainedFleet', () => {
  it('onboards pledges, reports per-phase percentiles, and counts failures by reason', async () => {
    const manufacturer = new X509Certificate(w.fx.pem('manufacturer-ca.pem'));
    const masaSigner = new X509Certificate(w.fx.pem('masa-signer.pem'));
    const seen: number[] = [];
    const report = await runConstrainedFleet({
      count: 4, concurrency: 2, host: '127.0.0.1', port: w.port, trust: [manufacturer, masaSigner],
      identity: (i) => {
        const p = w.fx.pledges[i]!;
        // Pledge 3 claims another serial in its PVR than its IDevID carries: the registrar refuses.
        return { serial: i === 3 ? 'NOT-MY-SERIAL' : p.serial, idevid: p.cert, idevidChainPem: w.chainPem(p), idevidKeyPem: p.keyPem, signer: p.signer };
      },
      onResult: (_r, p) => seen.push(p.done),
    });
    expect(report).toMatchObject({ count: 4, onboarded: 3, failed: 1, format: 'cose', byFormat: { cose: { onboarded: 3, failed: 1 } } });
    expect(report.failuresByReason).toEqual({ 'voucher-refused': 1 });
    expect(report.latency.total.count).toBe(3);
    expect(report.latency.total.p99).toBeGreaterThanOrEqual(report.latency.total.p50);
    expect(report.outcomes.map((o) => o.index)).toEqual([0, 1, 2, 3]);
    expect(report.outcomes[3]).toMatchObject({ ok: false, reason: 'voucher-refused', registrar: `coaps://127.0.0.1:${w.port}` });
    expect(seen.sort()).toEqual([1, 2, 3, 4]);
  });
});

describe('parseCoapsUrl', () => {
  it('takes host and port, defaults to 5684, unwraps IPv6, refuses other schemes', () => {
    expect(parseCoapsUrl('coaps://10.0.0.1:6000')).toEqual({ host: '10.0.0.1', port: 6000 });
    expect(parseCoapsUrl('coaps://registrar.example')).toEqual({ host: 'registrar.example', port: 5684 });
    expect(parseCoapsUrl('coaps://[fe80::1]:5684')).toEqual({ host: 'fe80::1', port: 5684 });
    expect(() => parseCoapsUrl('https://registrar.example')).toThrow(/coaps:\/\//);
    expect(() => parseCoapsUrl('registrar:5684')).toThrow();
  });
});

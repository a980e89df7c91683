import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Histogram } from '../../src/fleet/histogram.ts';
import { formatFor, runFleet } from '../../src/fleet/fleet.ts';
import { formatSummary, reportJson } from '../../src/fleet/report.ts';
import { createDomain, createManufacturer, manufacturePledge, type Manufacturer } from '../helpers/fixture-pki.ts';
import { startFakeRegistrar, type FakeRegistrar } from '../helpers/fake-registrar.ts';

describe('Histogram', () => {
  it('gives nearest-rank percentiles and ignores invalid samples', () => {
    const h = new Histogram();
    for (let i = 1; i <= 100; i++) h.record(i);
    h.record(Number.NaN);
    h.record(-1);
    expect(h.stats()).toMatchObject({ count: 100, p50: 50, p90: 90, p99: 99, max: 100, mean: 50.5 });
    expect(new Histogram().stats()).toMatchObject({ count: 0, p50: 0, max: 0 });
  });
});

describe('runFleet', () => {
  let m: Manufacturer;
  let good: FakeRegistrar;
  let bad: FakeRegistrar;
  beforeAll(async () => {
    m = await createManufacturer();
    const d = await createDomain('Fleet');
    good = await startFakeRegistrar(m, d);
    bad = await startFakeRegistrar(m, d, { mutate: (v) => { v.serialNumber = 'nope'; } });
  });
  afterAll(async () => { await good.close(); await bad.close(); });

  it('rotates formats in mixed mode', () => {
    expect([0, 1, 2, 3].map((i) => formatFor('mixed', i))).toEqual(['cms', 'jws', 'cose', 'cms']);
    expect(formatFor('cose', 5)).toBe('cose');
  });

  it('onboards every pledge with bounded concurrency and reports per-phase latency', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const report = await runFleet({
      count: 9, concurrency: 3, format: 'mixed', registrars: [good.origin], trust: [m.masa.certificates[0]!],
      secureElement: async (i) => {
        inFlight++; maxInFlight = Math.max(maxInFlight, inFlight);
        return manufacturePledge(m, `FLEET-${i}`);
      },
      onResult: () => { inFlight--; },
    });
    expect(report).toMatchObject({ count: 9, onboarded: 9, failed: 0, failuresByReason: {} });
    expect(report.byFormat).toEqual({ cms: { onboarded: 3, failed: 0 }, jws: { onboarded: 3, failed: 0 }, cose: { onboarded: 3, failed: 0 } });
    expect(maxInFlight).toBeLessThanOrEqual(3);
    expect(report.latency.voucher.count).toBe(9);
    expect(new Set(report.outcomes.map((o) => o.ldevidSerial)).size).toBe(9);
    expect(formatSummary(report)).toMatch(/onboarded: 9 {2}failed: 0/);
    expect(JSON.stringify(reportJson(report))).not.toMatch(/BEGIN CERTIFICATE/);
  });

  it('counts failures by named reason', async () => {
    const report = await runFleet({
      count: 4, concurrency: 2, format: 'jws', registrars: [bad.origin], trust: [m.masa.certificates[0]!],
      secureElement: (i) => manufacturePledge(m, `BAD-${i}`),
    });
    expect(report).toMatchObject({ onboarded: 0, failed: 4, failuresByReason: { 'voucher-serial-mismatch': 4 } });
    expect(formatSummary(report)).toMatch(/voucher-serial-mismatch\s+4/);
  });

  it('reports a pledge whose secure element cannot be made', async () => {
    const report = await runFleet({
      count: 1, concurrency: 1, format: 'jws', registrars: [good.origin], trust: [m.masa.certificates[0]!],
      secureElement: () => Promise.reject(new Error('station offline')),
    });
    expect(report.outcomes[0]).toMatchObject({ ok: false, reason: 'error', message: 'station offline' });
  });
});

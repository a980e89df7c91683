/**
 * The product line's ownership policy is read in the same store round trip as the device (the
 * authority remembers each serial's line as a hint). The hint must only choose WHICH key to read:
 * an administrator's change of the line policy applies to the very next request.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VOUCHER_MEDIA_TYPE } from '@brski/shared/media';
import { useMasaTestWorld } from './helpers/world.ts';
import { startMasa, type Harness } from './helpers/harness.ts';
import { buildPvr, buildRvr, makePledge, type Pledge, type TestPki } from './helpers/pki.ts';

const RV = '/.well-known/brski/requestvoucher';

const world = useMasaTestWorld();
let pki: TestPki;
beforeAll(() => { pki = world.pki; });

const stores = world.stores;

describe.each(stores)('product line policy (%s store)', (_name, makeStore) => {
  let h: Harness;
  beforeAll(async () => { h = await startMasa(pki, makeStore()); });
  afterAll(async () => { await h?.stop(); });

  const request = async (p: Pledge, domain = pki.domainA) => {
    const rvr = await buildRvr('jws', p, domain, await buildPvr('jws', p, domain.registrar));
    return h.client(domain.registrar).post(RV, rvr, VOUCHER_MEDIA_TYPE.jws);
  };
  const setLine = async (line: string, policy: string) => {
    const r = await h.admin('PUT', `/admin/product-lines/${line}/policy`, { policy });
    expect(r.status, r.text).toBe(200);
  };

  it('a line policy change applies to the next request of a device already seen', async () => {
    const line = `line-${Math.random().toString(36).slice(2)}`;
    const p = await makePledge(pki);
    const imp = await h.admin('PUT', `/admin/devices/${p.serial}`, { certificate: Buffer.from(p.idevid.cert.raw).toString('base64'), productLine: line });
    expect(imp.status, imp.text).toBe(201);

    await setLine(line, 'open');
    expect((await request(p, pki.domainA)).status).toBe(200);
    expect((await request(p, pki.domainB)).status).toBe(200); // open: any domain

    await setLine(line, 'claimed'); // no claim recorded → nobody gets a voucher
    const refused = await request(p, pki.domainA);
    expect(refused.status, refused.text).toBe(403);
    expect(refused.text).toContain('policy "claimed"');

    await setLine(line, 'first-use'); // the first domain to ask now wins...
    expect((await request(p, pki.domainB)).status).toBe(200);
    const other = await request(p, pki.domainA); // ...and the other is refused
    expect(other.status, other.text).toBe(403);
    expect(other.text).toContain('claimed-by-other-domain');
    expect(await h.store.readAudit(p.serial)).toHaveLength(3);
  });

  it('issuanceContext reads the named line policy with the device', async () => {
    const line = `line-${Math.random().toString(36).slice(2)}`;
    await h.store.setProductLinePolicy(line, 'open');
    const ctx = await h.store.issuanceContext('no-such-serial', { productLine: line });
    expect(ctx.device).toBeUndefined();
    expect(ctx.linePolicy).toEqual({ line, policy: 'open' });
    expect((await h.store.issuanceContext('no-such-serial', { productLine: `${line}-unset` })).linePolicy)
      .toEqual({ line: `${line}-unset`, policy: undefined });
    expect((await h.store.issuanceContext('no-such-serial')).linePolicy).toBeUndefined();
  });
});

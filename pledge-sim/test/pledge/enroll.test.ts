import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { csrAttr, encodeCsrAttrs } from '@brski/shared/est/csrattrs';
import { OID } from '@brski/shared/pki/oids';
import { Pledge } from '../../src/pledge/pledge.ts';
import { PledgeFailure } from '../../src/pledge/errors.ts';
import { createDomain, createManufacturer, manufacturePledge, type Domain, type Manufacturer } from '../helpers/fixture-pki.ts';
import { startFakeRegistrar, type FakeKnobs, type FakeRegistrar } from '../helpers/fake-registrar.ts';

let m: Manufacturer;
let domain: Domain;
let stranger: Domain;
const running: FakeRegistrar[] = [];
let n = 0;
beforeAll(async () => { m = await createManufacturer(); domain = await createDomain('Owner'); stranger = await createDomain('Stranger'); });
afterEach(async () => { await Promise.all(running.splice(0).map((r) => r.close())); });

async function run(knobs: FakeKnobs) {
  const r = await startFakeRegistrar(m, domain, knobs);
  running.push(r);
  const se = await manufacturePledge(m, `EN-${++n}`);
  const p = new Pledge({ se, registrars: [r.origin], format: 'jws', trust: [m.masa.certificates[0]!], retry: { capSeconds: 0.01, transportRetries: 0 } });
  let failure: PledgeFailure | undefined;
  try { await p.onboard(); } catch (e) { if (e instanceof PledgeFailure) failure = e; else throw e; }
  return { r, se, failure, p };
}

// DER of a subjectAltName with one dNSName, the value a registrar would ask for.
const SAN = Uint8Array.from([0x30, 0x0d, 0x82, 0x0b, ...Buffer.from('pledge.test')]);

describe('pledge enrollment', () => {
  it('follows csrattrs: the requested curve for the new SE key and the requested extension values', async () => {
    const { r, se, failure } = await run({ csrAttrs: encodeCsrAttrs([csrAttr.ecKey('P-384'), csrAttr.extensionRequest([{ oid: OID.subjectAltName, value: SAN }])]) });
    expect(failure).toBeUndefined();
    const csr = r.recorded.csrs[0]!;
    expect(csr.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    expect(csr.extensions.find((e) => e.oid === OID.subjectAltName)?.value).toEqual(SAN);
    expect(se.signer(se.active('ldevid')!.handle).algorithm).toBe('ES384');
  });

  it('re-enrolls with the curve csrattrs asked for at enrollment', async () => {
    const { r, p, failure } = await run({ csrAttrs: encodeCsrAttrs([csrAttr.ecKey('P-384')]) });
    expect(failure).toBeUndefined();
    await p.reenroll();
    expect(r.recorded.paths.at(-1)).toBe('/.well-known/est/simplereenroll');
    expect(r.recorded.csrs.map((c) => c.publicKey.asymmetricKeyDetails?.namedCurve)).toEqual(['secp384r1', 'secp384r1']);
  });

  it('refuses a key type the secure element cannot make (RSA) before sending any CSR', async () => {
    const rsa = encodeCsrAttrs([{ kind: 'attribute', type: OID.rsaEncryption, values: [Uint8Array.from([0x02, 0x02, 0x08, 0x00])] }]);
    const { r, se, failure } = await run({ csrAttrs: rsa });
    expect(failure?.reason).toBe('est-csrattrs-failed');
    expect(r.recorded.csrs).toHaveLength(0);
    expect(se.state).toBe('manufactured');
    // Reported on the same session like any enrollment failure (§12 Pledge 7).
    expect(r.recorded.enrollStatus.map((x) => x.body)).toEqual([expect.objectContaining({ version: 1, status: false })]);
  });

  it('reports a refused enrollment on the same session and keeps the SE manufactured', async () => {
    const { r, se, failure } = await run({ enrollStatus: 403 });
    expect(failure?.reason).toBe('enroll-refused');
    expect(se.state).toBe('manufactured');
    expect(r.recorded.enrollStatus).toHaveLength(1);
    expect(r.recorded.enrollStatus[0]!.body).toMatchObject({ version: 1, status: false });
    expect(r.recorded.enrollStatus[0]!.clientCert).toBe(se.active('idevid')!.chain[0]!.subject); // IDevID session, no reconnect
  });

  it('refuses an LDevID that does not chain to the domain CA set', async () => {
    const { se, failure } = await run({ issueFrom: stranger });
    expect(failure?.reason).toBe('ldevid-invalid');
    expect(se.state).toBe('manufactured');
    expect(se.active('ldevid')).toBeUndefined();
  });
});

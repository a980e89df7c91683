/**
 * PVR variants an independent pledge may send (digest §6.1, §6.3): a COSE PVR carrying an
 * unprotected x5bag (the registrar MUST ignore it, even when it is not a certificate at all), a COSE
 * PVR without tag 18 and a CMS PVR sent as base64 text (both accepted; the RVR must still embed the
 * tagged COSE_Sign1 / the ContentInfo DER, §5.2).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder, Encoder, Tag } from 'cbor-x';
import { X509Certificate } from 'node:crypto';
import { verifyVoucherArtifact } from '@brski/shared/envelope/artifact';
import { VOUCHER_MEDIA_TYPE, type VoucherFormat } from '@brski/shared/media';
import type { Voucher } from '@brski/shared/voucher/model';
import type { Registrar } from '../src/server.ts';
import { type Fixture } from './helpers/fixture.ts';
import { makePvr, request } from './helpers/client.ts';
import type { TestMasa } from './helpers/test-masa.ts';
import { startRegistrarWorld, type RegistrarWorld } from './helpers/world.ts';

let world: RegistrarWorld;
let fx: Fixture;
let masa: TestMasa;
let reg: Registrar;

beforeAll(async () => {
  world = await startRegistrarWorld({ devices: 4 });
  ({ fx, masa, reg } = world);
});
afterAll(async () => { await world?.stop(); });

async function post(format: VoucherFormat, index: number, body: Uint8Array | string) {
  const p = fx.pledges[index]!;
  return request(`${reg.url}/.well-known/brski/requestvoucher`, {
    method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE[format], accept: VOUCHER_MEDIA_TYPE[format] }, body, key: p.keyPem, cert: p.certPem,
  });
}

describe('PVR variants', () => {
  it('COSE: an unprotected x5bag is ignored, even one that holds no certificate', async () => {
    const p = fx.pledges[0]!;
    const { bytes } = await makePvr('cose', p.signer, p.serial, { registrarCert: fx.registrarCert, proximity: 'pubk-sha256' });
    const dec = new Decoder({ mapsAsObjects: false });
    const tagged = dec.decode(bytes) as Tag;
    const [prot, , payload, sig] = tagged.value as [Uint8Array, Map<number, unknown>, Uint8Array, Uint8Array];
    const junkBag = new Map<number, unknown>([[32, Buffer.of(1, 2, 3)]]);
    const mutated = new Encoder({ mapsAsObjects: false, useRecords: false }).encode(new Tag([Buffer.from(prot), junkBag, Buffer.from(payload), Buffer.from(sig)], 18)); // Buffer: a bstr, not a typed-array tag
    const res = await post('cose', 0, new Uint8Array(mutated));
    expect(res.status, res.body.toString()).toBe(200);
    // The MASA got the PVR bytes as the pledge sent them (the bag is the pledge's business).
    expect(Buffer.from(masa.lastRvr!.data.priorSignedVoucherRequest!).equals(Buffer.from(mutated))).toBe(true);
  });

  it('COSE without tag 18: accepted, and the RVR carries the tagged COSE_Sign1 (D2 84 …), which still verifies', async () => {
    const p = fx.pledges[3]!;
    const { bytes } = await makePvr('cose', p.signer, p.serial, { registrarCert: fx.registrarCert, proximity: 'pubk' });
    expect([bytes[0], bytes[1]]).toEqual([0xd2, 0x84]);
    const untagged = bytes.subarray(1);
    const res = await post('cose', 3, untagged);
    expect(res.status, res.body.toString()).toBe(200); // the test MASA verified the prior PVR's signature
    const prior = masa.lastRvr!.data.priorSignedVoucherRequest!;
    expect([prior[0], prior[1]]).toEqual([0xd2, 0x84]);
    expect(Buffer.from(prior).equals(Buffer.from(bytes))).toBe(true);
    const verified = await verifyVoucherArtifact('cose', prior, {
      anchors: [new X509Certificate(fx.pem('idevid-ca.pem'))], signerCertificate: p.cert, ignoreEmbedded: true,
      kind: 'voucher-request', strict: false, role: 'pvr' });
    expect(verified.envelope.warnings).not.toContain('untagged COSE_Sign1');
  });

  it('CMS sent as base64 text: accepted, and the RVR carries the ContentInfo DER', async () => {
    const p = fx.pledges[1]!;
    const { bytes } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx.registrarCert });
    const res = await post('cms', 1, Buffer.from(bytes).toString('base64').replace(/.{64}/g, '$&\n'));
    expect(res.status, res.body.toString()).toBe(200);
    const prior = masa.lastRvr!.data.priorSignedVoucherRequest!;
    expect(prior[0]).toBe(0x30);
    expect(Buffer.from(prior).equals(Buffer.from(bytes))).toBe(true);
  });

  it('an Accept that excludes the PVR format is forwarded to the MASA; the voucher comes back in the format asked for', async () => {
    const p = fx.pledges[2]!;
    const { bytes, nonce } = await makePvr('cms', p.signer, p.serial, { registrarCert: fx.registrarCert });
    const send = (accept: string) => request(`${reg.url}/.well-known/brski/requestvoucher`, {
      method: 'POST', headers: { 'content-type': VOUCHER_MEDIA_TYPE.cms, accept }, body: bytes, key: p.keyPem, cert: p.certPem,
    });
    const calls = masa.calls;
    // Nothing the registrar could relay: 406 before any MASA call.
    const none = await send('text/plain');
    expect(none.status, none.body.toString()).toBe(406);
    expect(masa.calls).toBe(calls);

    const res = await send(VOUCHER_MEDIA_TYPE.jws);
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.headers['content-type']).toBe(VOUCHER_MEDIA_TYPE.jws);
    expect(masa.lastAccept).toBe(VOUCHER_MEDIA_TYPE.jws);
    expect(masa.lastRvr!.format).toBe('cms'); // the RVR stays in the PVR's format
    const v = await verifyVoucherArtifact<Voucher>('jws', new Uint8Array(res.body), {
      anchors: [new X509Certificate(fx.pem('manufacturer-ca.pem'))], kind: 'voucher', strict: false, role: 'voucher' });
    expect(Buffer.from(v.decoded.data.nonce!).equals(Buffer.from(nonce))).toBe(true);
    // The identical retry is answered from the stored job, in the same format.
    const again = await send(VOUCHER_MEDIA_TYPE.jws);
    expect(again.status).toBe(200);
    expect(again.headers['content-type']).toBe(VOUCHER_MEDIA_TYPE.jws);
    expect(again.body.equals(res.body)).toBe(true);
    expect((await reg.store.getVoucher(p.serial))!.format).toBe('jws');
  });
});

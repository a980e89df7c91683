/**
 * Codec + envelope: PVR → RVR (embedding the signed PVR) → voucher in every format and curve,
 * decoded and checked against the message rules; plus the published chains end to end.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectVoucherArtifact, signVoucherArtifact, verifyVoucherArtifact } from '../../src/envelope/artifact.ts';
import { BrskiError } from '../../src/errors.ts';
import { VOUCHER_FORMATS } from '../../src/media.ts';
import type { Voucher, VoucherRequest } from '../../src/voucher/model.ts';
import { readVector, vectorCert, vectorCerts } from '../helpers/vectors.ts';
import { createTestPki, type Curve, type TestPki } from './fixtures.ts';

for (const curve of ['P-256', 'P-384'] as Curve[]) {
  describe(`voucher artifacts (${curve})`, () => {
    let pledge: TestPki; // "manufacturer" PKI: IDevID signer
    let domain: TestPki; // registrar PKI
    let masa: TestPki;
    beforeAll(() => { pledge = createTestPki(curve); domain = createTestPki(curve); masa = createTestPki(curve); });
    afterAll(() => { pledge.cleanup(); domain.cleanup(); masa.cleanup(); });

    for (const format of VOUCHER_FORMATS) {
      it(`${format}: PVR → RVR → voucher, each verified, decoded and role-checked`, async () => {
        const nonce = new Uint8Array(randomBytes(16));
        const pvrData: VoucherRequest = {
          assertion: 'proximity', serialNumber: 'SN-42', nonce, createdOn: '2026-01-01T00:00:00Z',
          proximityRegistrarCert: new Uint8Array(domain.leaf.cert.raw),
        };
        const pvr = await signVoucherArtifact(format, 'voucher-request', pvrData, pledge.signer);
        const pvrOpts = format === 'cose'
          ? { anchors: [pledge.root.cert], signerCertificate: pledge.leaf.cert, extraCertificates: [pledge.intermediate.cert] }
          : { anchors: [pledge.root.cert] };
        const vp = await verifyVoucherArtifact<VoucherRequest>(format, pvr, { ...pvrOpts, strict: true, role: 'pvr' });
        expect(vp.decoded.kind).toBe('voucher-request');
        expect(vp.decoded.data.nonce).toEqual(nonce);
        expect(vp.decoded.data.proximityRegistrarCert).toEqual(new Uint8Array(domain.leaf.cert.raw));

        const rvrData: VoucherRequest = {
          assertion: 'proximity', serialNumber: 'SN-42', nonce, createdOn: '2026-01-01T00:00:01Z',
          idevidIssuer: Uint8Array.from([0x04, 0x18, 0x30, 0x16, 0x80, 0x14, ...new Uint8Array(20).fill(7)]),
          priorSignedVoucherRequest: pvr,
        };
        const rvr = await signVoucherArtifact(format, 'voucher-request', rvrData, domain.signer,
          { unprotectedX5bag: [...domain.signer.certificates, ...pledge.signer.certificates] });
        const vr = await verifyVoucherArtifact<VoucherRequest>(format, rvr, { anchors: [domain.root.cert], strict: true, role: 'rvr' });
        expect(vr.decoded.data.priorSignedVoucherRequest).toEqual(pvr);
        // the MASA can verify the embedded PVR in turn
        await verifyVoucherArtifact(format, vr.decoded.data.priorSignedVoucherRequest!, { ...pvrOpts, strict: true, role: 'pvr' });

        const voucherData: Voucher = {
          assertion: 'logged', serialNumber: 'SN-42', nonce, createdOn: '2026-01-01T00:00:02Z',
          pinnedDomainCert: new Uint8Array(domain.root.cert.raw),
        };
        const voucher = await signVoucherArtifact(format, 'voucher', voucherData, masa.signer, { unprotectedX5bag: masa.signer.certificates });
        const vv = await verifyVoucherArtifact<Voucher>(format, voucher, { anchors: [masa.root.cert], strict: false, role: 'voucher' });
        expect(vv.decoded.data).toMatchObject({ serialNumber: 'SN-42', assertion: 'logged' });
        expect(vv.envelope.signer.fingerprint256).toBe(masa.leaf.cert.fingerprint256);
        expect(inspectVoucherArtifact(format, voucher, { strict: false }).decoded.data.serialNumber).toBe('SN-42');

        // a voucher is not a voucher-request, and a PVR without a nonce breaks the PVR rules
        await expect(verifyVoucherArtifact(format, voucher, { anchors: [masa.root.cert], strict: true, role: 'rvr' }))
          .rejects.toBeInstanceOf(BrskiError);
        const { nonce: _n, ...noNonce } = pvrData;
        const bad = await signVoucherArtifact(format, 'voucher-request', noNonce, pledge.signer);
        await expect(verifyVoucherArtifact(format, bad, { ...pvrOpts, strict: true, role: 'pvr' })).rejects.toThrow(/nonce/);
        // the envelope check comes first: a payload from an untrusted signer never reaches the decoder
        await expect(verifyVoucherArtifact(format, voucher, { anchors: [domain.root.cert], strict: true, role: 'voucher' }))
          .rejects.toMatchObject({ code: 'untrusted-chain' });
      });
    }
  });
}

describe('published voucher chains through the artifact layer', () => {
  it('RFC 8995 CMS: PVR, RVR (prior = PVR bytes), voucher (nonce echoed, pin = registrar)', async () => {
    const at = new Date('2021-04-14T00:00:00Z');
    const vendor = vectorCert('rfc8995/vendor.crt');
    const pvr = await verifyVoucherArtifact<VoucherRequest>('cms', readVector('rfc8995/vr_00-D0-E5-F2-00-02.der'),
      { anchors: [vendor], at, strict: false, role: 'pvr' });
    const rvr = await verifyVoucherArtifact<VoucherRequest>('cms', readVector('rfc8995/parboiled_vr_00-D0-E5-F2-00-02.der'),
      { anchors: [vectorCert('rfc8995/ownerca_secp384r1.crt')], at, strict: false, requireEku: '1.3.6.1.5.5.7.3.28' });
    expect(rvr.decoded.data.priorSignedVoucherRequest).toEqual(readVector('rfc8995/vr_00-D0-E5-F2-00-02.der'));
    const voucher = await verifyVoucherArtifact<Voucher>('cms', readVector('rfc8995/voucher_00-D0-E5-F2-00-02.der'),
      { anchors: [vendor], at, strict: false, role: 'voucher' });
    expect(voucher.decoded.nonceText).toBe(pvr.decoded.nonceText);
    expect(voucher.decoded.data.pinnedDomainCert).toEqual(new Uint8Array(vectorCert('rfc8995/jrc_prime256v1.crt').raw));
  });

  it('JWS voucher draft: RVR carries the PVR JWS, voucher nonce = PVR nonce', async () => {
    const at = new Date('2024-11-30T00:00:00Z');
    const mfg = vectorCerts('jws-voucher/pvr-signer.chain.pem')[1]!;
    const rvr = await verifyVoucherArtifact<VoucherRequest>('jws', readVector('jws-voucher/rvr.jws.json'),
      { anchors: [vectorCerts('jws-voucher/rvr-signer.chain.pem')[1]!], at, strict: false, role: 'rvr' });
    const pvr = await verifyVoucherArtifact<VoucherRequest>('jws', rvr.decoded.data.priorSignedVoucherRequest!,
      { anchors: [mfg], at, strict: false, role: 'pvr' });
    const voucher = await verifyVoucherArtifact<Voucher>('jws', readVector('jws-voucher/voucher.jws.json'),
      { anchors: [mfg], at, strict: false, role: 'voucher' });
    expect(voucher.decoded.data.nonce).toEqual(pvr.decoded.data.nonce);
    expect(voucher.decoded.data.serialNumber).toBe(pvr.decoded.data.serialNumber);
  });

  it('cBRSKI COSE: RVR embeds pvr.cose exactly; voucher decodes with SID deltas', async () => {
    const rvrBytes = readVector('cbrski/rvr.cose');
    const inspected = inspectVoucherArtifact<VoucherRequest>('cose', rvrBytes, { strict: false });
    const rvr = await verifyVoucherArtifact<VoucherRequest>('cose', rvrBytes,
      { anchors: [inspected.envelope.embedded[1]!], at: new Date('2022-12-07T00:00:00Z'), strict: false, role: 'rvr' });
    expect(rvr.decoded.data.priorSignedVoucherRequest).toEqual(readVector('cbrski/pvr.cose'));
    const pvr = await verifyVoucherArtifact<VoucherRequest>('cose', rvr.decoded.data.priorSignedVoucherRequest!, {
      anchors: [vectorCert('cbrski/masa_ca.pem')], signerCertificate: vectorCert('cbrski/pledge.pem'),
      at: new Date('2022-12-10T00:00:00Z'), strict: false, role: 'pvr' });
    expect(pvr.decoded.data.serialNumber).toBe('JADA123456789');
    const voucher = await verifyVoucherArtifact<Voucher>('cose', readVector('cbrski/voucher.cose'), {
      anchors: [vectorCert('cbrski/masa_ca.pem')], signerCertificate: vectorCert('cbrski/masa_ca.pem'),
      at: new Date('2022-12-07T00:00:00Z'), strict: false, role: 'voucher' });
    expect(voucher.decoded.data.serialNumber).toBe('JADA123456789');
    // documented: separate runs → nonces differ
    expect(voucher.decoded.data.nonce).not.toEqual(pvr.decoded.data.nonce);
  });
});

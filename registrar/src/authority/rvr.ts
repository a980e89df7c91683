/**
 * Registrar voucher-request (digest §5.2, §5.3, §12 Registrar 4 and 14): built in the PVR's
 * format, signed with the registrar's TLS key (digest §11 #22), carrying
 *   serial-number from the IDevID (never copied from the PVR), idevid-issuer (§8.4), the nonce
 *   copied (JSON: the exact string), prior-signed-voucher-request = the PVR bytes as received (CMS: as DER;
 *   COSE: tagged), created-on, and the PVR's assertion propagated. Never a proximity leaf, and never
 *   domain-cert-revocation-checks (meaningless in a request, §5.2).
 * COSE: x5bag holds the registrar's signing chain AND the pledge's chain so the MASA can
 * validate the PVR, which carries no certificate.
 */
import type { X509Certificate } from 'node:crypto';
import type { Signer } from '@brski/shared/crypto/signer';
import { signVoucherArtifact } from '@brski/shared/envelope/artifact';
import { decodeCmsInput } from '@brski/shared/envelope/cms-parse';
import type { VoucherRequest } from '@brski/shared/voucher/model';
import type { PledgeIdentity } from './identity.ts';
import type { VerifiedPvr } from './pvr.ts';

export interface RvrOptions {
  now: Date;
  /** Registrar chain to embed (TLS EE first, up to and including the domain root). */
  registrarChain: readonly X509Certificate[];
}

export function rvrData(pvr: VerifiedPvr, pledge: PledgeIdentity, opts: RvrOptions): VoucherRequest {
  const data: VoucherRequest = {
    createdOn: opts.now.toISOString(),
    serialNumber: pledge.serial,
    idevidIssuer: pledge.idevidIssuer,
    priorSignedVoucherRequest: priorSigned(pvr),
  };
  if (pvr.data.assertion) data.assertion = pvr.data.assertion;
  if (pvr.data.nonce) data.nonce = pvr.data.nonce;
  return data;
}

/** CBOR head of tag 18 (COSE_Sign1): major type 6, value 18. */
const COSE_SIGN1_TAG_HEAD = 0xd2;

/** The PVR as the MASA must get it (§5.2): as received, except for the two forms we accept for interop. */
function priorSigned(pvr: VerifiedPvr): Uint8Array {
  // CMS: the ContentInfo DER, also when the pledge sent it as base64 text.
  if (pvr.format === 'cms') return decodeCmsInput(pvr.bytes);
  // COSE: the tag-18 COSE_Sign1. An untagged one starts with its array head (CBOR major type 4);
  // adding the tag keeps the signature valid, which covers the Sig_structure, not the tag.
  if (pvr.format === 'cose' && (pvr.bytes[0]! >> 5) === 4) {
    const tagged = new Uint8Array(pvr.bytes.length + 1);
    tagged[0] = COSE_SIGN1_TAG_HEAD;
    tagged.set(pvr.bytes, 1);
    return tagged;
  }
  return pvr.bytes;
}

export async function buildRvr(pvr: VerifiedPvr, pledge: PledgeIdentity, signer: Signer, opts: RvrOptions): Promise<Uint8Array> {
  const data = rvrData(pvr, pledge, opts);
  if (pvr.format === 'cose') {
    const bag = dedupe([...opts.registrarChain, ...pledge.chain]);
    return signVoucherArtifact('cose', 'voucher-request', data, signer, { unprotectedX5bag: bag });
  }
  return signVoucherArtifact(pvr.format, 'voucher-request', data, signer, {
    ...(pvr.nonceText === undefined ? {} : { json: { nonceText: pvr.nonceText } }),
    ...(pvr.format === 'cms' ? { includeCertificates: [...opts.registrarChain] } : {}),
  });
}

function dedupe(certs: X509Certificate[]): X509Certificate[] {
  const seen = new Set<string>();
  return certs.filter((c) => (seen.has(c.fingerprint256) ? false : (seen.add(c.fingerprint256), true)));
}

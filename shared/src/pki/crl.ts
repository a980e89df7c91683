/**
 * X.509 v2 CRLs (RFC 5280 §5): issued through a Signer, parsed strictly, looked up by serial.
 */
import { verify as nodeVerify, type X509Certificate } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { MalformedError } from '../errors.ts';
import type { Signer } from '../crypto/signer.ts';
import { bytesEqual, children, normalizeSerialHex, parseDer, rawBytes, tagOf } from './der.ts';
import { authorityKeyIdExtension, toPkijsExtension } from './extensions.ts';
import { nameFromDer, signAndAssemble, signatureAlgorithmOf } from './certificate.ts';
import { certificateInfo, keyIdentifierOf, parseExtensions, parseName } from './identity.ts';
import { OID, SIGNATURE_HASH } from './oids.ts';

/** RFC 5280 §5.3.1 CRLReason values. */
export const CRL_REASON = {
  unspecified: 0, keyCompromise: 1, cACompromise: 2, affiliationChanged: 3, superseded: 4,
  cessationOfOperation: 5, certificateHold: 6, removeFromCRL: 8, privilegeWithdrawn: 9, aACompromise: 10,
} as const;
export type CrlReason = keyof typeof CRL_REASON;

export interface RevokedEntry { serialNumber: string; revokedAt: Date; reason?: CrlReason }

export interface CreateCrlOptions {
  issuer: Signer;
  issuerCertificate: X509Certificate;
  revoked: readonly RevokedEntry[];
  thisUpdate: Date;
  nextUpdate: Date;
  crlNumber: number | bigint;
}

export interface ParsedCrl {
  der: Uint8Array;
  tbs: Uint8Array;
  issuer: Array<[string, string]>;
  issuerDer: Uint8Array;
  thisUpdate: Date;
  nextUpdate?: Date;
  crlNumber?: bigint;
  signatureAlgorithm: string;
  signature: Uint8Array;
  /** Keyed by normalised hex serial (upper case, no leading zeros). */
  revoked: ReadonlyMap<string, { revokedAt: Date; reason?: CrlReason }>;
}

const time = (d: Date): pkijs.Time => {
  const value = new Date(Math.floor(d.getTime() / 1000) * 1000);
  return new pkijs.Time({ type: value.getUTCFullYear() < 2050 ? 0 : 1, value });
};

function integerFromHex(hex: string): asn1js.Integer {
  let h = normalizeSerialHex(hex);
  if (h.length % 2) h = `0${h}`;
  if (parseInt(h[0]!, 16) >= 8) h = `00${h}`; // keep it positive
  return new asn1js.Integer({ valueHex: new Uint8Array(Buffer.from(h, 'hex')).buffer });
}

function bigintBytes(n: bigint): Uint8Array {
  if (n < 0n) throw new TypeError('CRL number must not be negative');
  let h = n.toString(16);
  if (h.length % 2) h = `0${h}`;
  if (parseInt(h[0]!, 16) >= 8) h = `00${h}`;
  return new Uint8Array(Buffer.from(h, 'hex'));
}

export async function createCrl(o: CreateCrlOptions): Promise<Uint8Array> {
  const info = certificateInfo(o.issuerCertificate);
  if (!(o.nextUpdate > o.thisUpdate)) throw new TypeError('nextUpdate must be later than thisUpdate');
  const crl = new pkijs.CertificateRevocationList();
  crl.version = 1;
  crl.signature = signatureAlgorithmOf(o.issuer);
  crl.issuer = nameFromDer(info.subjectDer);
  crl.thisUpdate = time(o.thisUpdate);
  crl.nextUpdate = time(o.nextUpdate);
  if (o.revoked.length > 0) {
    crl.revokedCertificates = o.revoked.map((r) => new pkijs.RevokedCertificate({
      userCertificate: integerFromHex(r.serialNumber),
      revocationDate: time(r.revokedAt),
      ...(r.reason === undefined ? {} : {
        crlEntryExtensions: new pkijs.Extensions({ extensions: [toPkijsExtension({
          oid: OID.crlReason, value: new Uint8Array(new asn1js.Enumerated({ value: CRL_REASON[r.reason] }).toBER()),
        })] }),
      }),
    }));
  }
  const crlNumber = new Uint8Array(new asn1js.Integer({ valueHex: bigintBytes(BigInt(o.crlNumber)).buffer as ArrayBuffer }).toBER());
  crl.crlExtensions = new pkijs.Extensions({ extensions: [
    toPkijsExtension(authorityKeyIdExtension(info.subjectKeyId ?? keyIdentifierOf(o.issuerCertificate))),
    toPkijsExtension({ oid: OID.crlNumber, value: crlNumber }),
  ] });
  const tbs = (crl as unknown as { encodeTBS(): asn1js.Sequence }).encodeTBS();
  return signAndAssemble(new Uint8Array(tbs.toBER()), o.issuer);
}

function timeOf(b: asn1js.AsnType | undefined): Date | undefined {
  return b instanceof asn1js.UTCTime || b instanceof asn1js.GeneralizedTime ? b.toDate() : undefined;
}

export function parseCrl(der: Uint8Array): ParsedCrl {
  const top = children(parseDer(der, 'CRL'), 'CertificateList');
  const [tbsBlock, alg, sig] = top;
  if (top.length !== 3 || !tbsBlock || !(sig instanceof asn1js.BitString)) throw new MalformedError('CRL: SEQUENCE {tbs, algorithm, signature} expected');
  const algOid = children(alg!, 'AlgorithmIdentifier')[0];
  if (!(algOid instanceof asn1js.ObjectIdentifier)) throw new MalformedError('CRL: signature algorithm OID expected');
  const tbs = children(tbsBlock, 'TBSCertList');
  let i = tbs[0] instanceof asn1js.Integer ? 1 : 0;
  i++; // signature
  const issuer = tbs[i++];
  const thisUpdate = timeOf(tbs[i++]);
  if (!issuer || !thisUpdate) throw new MalformedError('CRL: issuer and thisUpdate expected');
  const nextUpdate = timeOf(tbs[i]);
  if (nextUpdate) i++;
  const revoked = new Map<string, { revokedAt: Date; reason?: CrlReason }>();
  let crlNumber: bigint | undefined;
  for (; i < tbs.length; i++) {
    const b = tbs[i]!;
    if (b instanceof asn1js.Sequence) {
      for (const entry of children(b, 'revokedCertificates')) {
        const [serial, date, exts] = children(entry, 'RevokedCertificate');
        const revokedAt = timeOf(date);
        if (!(serial instanceof asn1js.Integer) || !revokedAt) throw new MalformedError('CRL: malformed revoked entry');
        const e: { revokedAt: Date; reason?: CrlReason } = { revokedAt };
        const reasonExt = exts ? parseExtensions(exts).get(OID.crlReason) : undefined;
        if (reasonExt) {
          const code = (parseDer(reasonExt.value, 'CRLReason') as asn1js.Enumerated).valueBlock.valueDec;
          const name = (Object.keys(CRL_REASON) as CrlReason[]).find((k) => CRL_REASON[k] === code);
          if (name) e.reason = name;
        }
        revoked.set(normalizeSerialHex(Buffer.from(serial.valueBlock.valueHexView).toString('hex')), e);
      }
    } else if (tagOf(b).cls === 3 && tagOf(b).number === 0) {
      const num = parseExtensions(children(b, 'crlExtensions')[0]!).get(OID.crlNumber);
      if (num) crlNumber = BigInt(`0x${Buffer.from((parseDer(num.value, 'CRLNumber') as asn1js.Integer).valueBlock.valueHexView).toString('hex') || '0'}`);
    }
  }
  return {
    der, tbs: rawBytes(tbsBlock), issuer: parseName(issuer), issuerDer: rawBytes(issuer), thisUpdate, nextUpdate, crlNumber,
    signatureAlgorithm: algOid.valueBlock.toString(), signature: new Uint8Array(sig.valueBlock.valueHexView), revoked,
  };
}

/** True if `issuer` issued this CRL: same name and its key verifies the CRL signature. */
export function verifyCrlSignature(crl: ParsedCrl, issuer: X509Certificate): boolean {
  const hash = SIGNATURE_HASH[crl.signatureAlgorithm];
  if (!hash || !bytesEqual(crl.issuerDer, certificateInfo(issuer).subjectDer)) return false;
  try {
    return nodeVerify(hash, crl.tbs, issuer.publicKey, crl.signature);
  } catch {
    return false;
  }
}

/**
 * Whether `cert` is listed in `crl`. Only a CRL of the certificate's own issuer counts (name match);
 * the caller verifies the CRL signature (verifyCrlSignature) and freshness.
 */
export function isRevokedIn(crl: ParsedCrl, cert: X509Certificate): boolean {
  const info = certificateInfo(cert);
  if (!bytesEqual(crl.issuerDer, info.issuerDer)) return false;
  return crl.revoked.has(normalizeSerialHex(info.serialHex));
}

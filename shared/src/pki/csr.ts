/**
 * PKCS#10 certification requests (RFC 2986): created through a Signer (a pledge's key may live in
 * a secure element), parsed strictly, and verified for proof of possession with node:crypto.
 */
import { createPublicKey, verify as nodeVerify, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { BrskiError, MalformedError } from '../errors.ts';
import type { Signer } from '../crypto/signer.ts';
import { children, parseDer, rawBytes, tagOf } from './der.ts';
import {
  encodeName, parseSubjectAltName, subjectAltNameExtension, toPkijsExtension,
  type DistinguishedName, type ExtensionInput, type SubjectAltName,
} from './extensions.ts';
import { nameFromDer, signAndAssemble, signatureAlgorithmOf } from './certificate.ts';
import { parseExtensions, parseName, spkiDer } from './identity.ts';
import { OID, SIGNATURE_HASH } from './oids.ts';

export interface CsrOptions {
  extensions?: readonly ExtensionInput[];
  /** Convenience: adds a subjectAltName extension. */
  subjectAltName?: SubjectAltName;
  challengePassword?: string;
}

export interface CsrAttribute { type: string; values: Uint8Array[] }

export interface ParsedCsr {
  der: Uint8Array;
  subject: Array<[string, string]>;
  subjectDer: Uint8Array;
  publicKey: KeyObject;
  spkiDer: Uint8Array;
  signatureAlgorithm: string;
  /** Self-signature checks out with the enclosed key (proof of possession). */
  signatureValid: boolean;
  /** Extensions from the extensionRequest attribute. */
  extensions: Array<Required<ExtensionInput>>;
  subjectAltName?: SubjectAltName & { other: number };
  challengePassword?: string;
  attributes: CsrAttribute[];
}

export async function createCsr(subject: DistinguishedName, signer: Signer, opts: CsrOptions = {}): Promise<Uint8Array> {
  const exts = [...(opts.extensions ?? [])];
  if (opts.subjectAltName) exts.push(subjectAltNameExtension(opts.subjectAltName));
  const req = new pkijs.CertificationRequest();
  req.version = 0;
  req.subject = nameFromDer(encodeName(subject));
  req.subjectPublicKeyInfo = pkijs.PublicKeyInfo.fromBER(spkiDer(signer.publicKey));
  req.attributes = [];
  if (opts.challengePassword !== undefined) {
    req.attributes.push(new pkijs.Attribute({ type: OID.challengePassword, values: [new asn1js.Utf8String({ value: opts.challengePassword })] }));
  }
  if (exts.length > 0) {
    req.attributes.push(new pkijs.Attribute({
      type: OID.extensionRequest,
      values: [new pkijs.Extensions({ extensions: exts.map(toPkijsExtension) }).toSchema()],
    }));
  }
  req.signatureAlgorithm = signatureAlgorithmOf(signer);
  // encodeTBS is protected in the typings but is the documented way to get the to-be-signed info.
  const info = (req as unknown as { encodeTBS(): asn1js.Sequence }).encodeTBS();
  return signAndAssemble(new Uint8Array(info.toBER()), signer);
}

function verifySignature(tbs: Uint8Array, sigOid: string, key: KeyObject, sig: Uint8Array): boolean {
  const hash = SIGNATURE_HASH[sigOid];
  if (!hash) return false;
  const isEc = key.asymmetricKeyType === 'ec';
  if (isEc !== sigOid.startsWith('1.2.840.10045.4.3.')) return false; // algorithm must fit the key type
  try {
    return nodeVerify(hash, tbs, key, sig);
  } catch {
    return false;
  }
}

/** Parses a DER PKCS#10 request. Structural problems throw MalformedError; a bad signature is reported in `signatureValid`. */
export function parseCsr(der: Uint8Array): ParsedCsr {
  const top = children(parseDer(der, 'CSR'), 'CertificationRequest');
  const [info, alg, sig] = top;
  if (top.length !== 3 || !info || !(sig instanceof asn1js.BitString)) throw new MalformedError('CSR: SEQUENCE {info, algorithm, signature} expected');
  const algOid = children(alg!, 'AlgorithmIdentifier')[0];
  if (!(algOid instanceof asn1js.ObjectIdentifier)) throw new MalformedError('CSR: signature algorithm OID expected');
  const parts = children(info, 'CertificationRequestInfo');
  const [version, subject, spki, attrs] = parts;
  if (!(version instanceof asn1js.Integer) || version.valueBlock.valueDec !== 0) throw new MalformedError('CSR: version 0 expected');
  if (!subject || !spki) throw new MalformedError('CSR: truncated CertificationRequestInfo');
  const spkiBytes = rawBytes(spki);
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: Buffer.from(spkiBytes), format: 'der', type: 'spki' });
  } catch (e) {
    throw new MalformedError('CSR: unusable subjectPublicKeyInfo', { cause: e });
  }
  const attributes: CsrAttribute[] = [];
  if (attrs) {
    const t = tagOf(attrs);
    if (t.cls !== 3 || t.number !== 0) throw new MalformedError('CSR: [0] attributes expected');
    for (const a of children(attrs, 'attributes')) {
      const [type, values] = children(a, 'Attribute');
      if (!(type instanceof asn1js.ObjectIdentifier) || !(values instanceof asn1js.Set)) throw new MalformedError('CSR: malformed attribute');
      attributes.push({ type: type.valueBlock.toString(), values: children(values, 'Attribute values').map(rawBytes) });
    }
  }
  const result: ParsedCsr = {
    der,
    subject: parseName(subject),
    subjectDer: rawBytes(subject),
    publicKey,
    spkiDer: spkiBytes,
    signatureAlgorithm: algOid.valueBlock.toString(),
    signatureValid: false,
    extensions: [],
    attributes,
  };
  result.signatureValid = verifySignature(rawBytes(info), result.signatureAlgorithm, publicKey, new Uint8Array(sig.valueBlock.valueHexView));
  for (const a of attributes) {
    if (a.type === OID.extensionRequest) {
      if (a.values.length !== 1 || result.extensions.length > 0) throw new MalformedError('CSR: extensionRequest must hold exactly one Extensions value');
      for (const [oid, e] of parseExtensions(parseDer(a.values[0]!, 'CSR extensionRequest'))) result.extensions.push({ oid, critical: e.critical, value: e.value });
    } else if (a.type === OID.challengePassword) {
      const v = a.values.length === 1 ? parseDer(a.values[0]!, 'challengePassword') : undefined;
      const s = (v as { valueBlock?: { value?: unknown } } | undefined)?.valueBlock?.value;
      if (typeof s !== 'string') throw new MalformedError('CSR: challengePassword must be one DirectoryString');
      result.challengePassword = s;
    }
  }
  const san = result.extensions.find((e) => e.oid === OID.subjectAltName);
  if (san) {
    try {
      result.subjectAltName = parseSubjectAltName(san.value);
    } catch (e) {
      throw new MalformedError('CSR: malformed subjectAltName', { cause: e });
    }
  }
  return result;
}

/** Parses and checks proof of possession; throws BrskiError('bad-csr') if the self-signature does not verify. */
export function verifyCsr(der: Uint8Array): ParsedCsr {
  const csr = parseCsr(der);
  if (!SIGNATURE_HASH[csr.signatureAlgorithm]) throw new BrskiError('bad-csr', `CSR: unsupported signature algorithm ${csr.signatureAlgorithm}`);
  if (!csr.signatureValid) throw new BrskiError('bad-csr', 'CSR: signature does not verify with the enclosed public key (no proof of possession)');
  return csr;
}

/**
 * CSR attributes (RFC 7030 §4.5.2 as clarified by RFC 9908): `CsrAttrs ::= SEQUENCE OF AttrOrOID`.
 * Concrete extension values travel in one id-ExtensionReq attribute holding one Extensions value;
 * the key type in `{id-ecPublicKey, {curve}}`; a bare OID asks for that item.
 */
import * as asn1js from 'asn1js';
import { MalformedError } from '../errors.ts';
import { children, derSequence, derTlv, parseDer, rawBytes } from '../pki/der.ts';
import type { ExtensionInput } from '../pki/extensions.ts';
import { parseExtensions } from '../pki/identity.ts';
import { CURVE_OID, OID } from '../pki/oids.ts';

export type CsrAttrItem =
  | { kind: 'oid'; oid: string }
  /** values: DER of each AttributeValue */
  | { kind: 'attribute'; type: string; values: Uint8Array[] };

const oidDer = (oid: string): Uint8Array => new Uint8Array(new asn1js.ObjectIdentifier({ value: oid }).toBER());

export function encodeCsrAttrs(items: readonly CsrAttrItem[]): Uint8Array {
  return derSequence(...items.map((i) => (i.kind === 'oid'
    ? oidDer(i.oid)
    : derSequence(oidDer(i.type), derTlv(0x31, ...i.values)))));
}

export function decodeCsrAttrs(der: Uint8Array): CsrAttrItem[] {
  return children(parseDer(der, 'csrattrs'), 'CsrAttrs').map((b): CsrAttrItem => {
    if (b instanceof asn1js.ObjectIdentifier) return { kind: 'oid', oid: b.valueBlock.toString() };
    if (b instanceof asn1js.Sequence) {
      const [type, values, extra] = children(b, 'Attribute');
      if (type instanceof asn1js.ObjectIdentifier && values instanceof asn1js.Set && !extra) {
        return { kind: 'attribute', type: type.valueBlock.toString(), values: children(values, 'Attribute values').map(rawBytes) };
      }
    }
    throw new MalformedError('csrattrs: each element must be an OID or an Attribute');
  });
}

/** Builders for the items our registrar sends. */
export const csrAttr = {
  oid: (oid: string): CsrAttrItem => ({ kind: 'oid', oid }),
  extensionRequest: (exts: readonly ExtensionInput[]): CsrAttrItem => ({
    kind: 'attribute', type: OID.extensionRequest,
    values: [derSequence(...exts.map((e) => derSequence(oidDer(e.oid), ...(e.critical ? [Uint8Array.of(0x01, 0x01, 0xff)] : []), derTlv(0x04, e.value))))],
  }),
  ecKey: (curve: keyof typeof CURVE_OID): CsrAttrItem => ({ kind: 'attribute', type: OID.ecPublicKey, values: [oidDer(CURVE_OID[curve])] }),
};

export interface CsrAttrsRequirements {
  /** Bare OIDs (e.g. challengePassword, a signature algorithm, an attribute to include). */
  oids: string[];
  /** Extension values from the id-ExtensionReq attribute, to copy into the CSR. */
  extensions: Array<Required<ExtensionInput>>;
  ecCurveOid?: string;
  rsaBits?: number;
  /** Attribute types we did not interpret (clients MUST ignore what they do not recognise). */
  unrecognised: string[];
}

/** Interprets decoded items per RFC 9908; more than one id-ExtensionReq attribute or value is malformed. */
export function csrAttrsRequirements(items: readonly CsrAttrItem[]): CsrAttrsRequirements {
  const out: CsrAttrsRequirements = { oids: [], extensions: [], unrecognised: [] };
  let sawExtReq = false;
  for (const i of items) {
    if (i.kind === 'oid') { out.oids.push(i.oid); continue; }
    if (i.type === OID.extensionRequest) {
      if (sawExtReq || i.values.length !== 1) throw new MalformedError('csrattrs: exactly one id-ExtensionReq attribute with one Extensions value (RFC 9908)');
      sawExtReq = true;
      for (const [oid, e] of parseExtensions(parseDer(i.values[0]!, 'csrattrs Extensions'))) out.extensions.push({ oid, critical: e.critical, value: e.value });
    } else if (i.type === OID.ecPublicKey && i.values.length === 1) {
      const curve = parseDer(i.values[0]!, 'csrattrs curve');
      if (curve instanceof asn1js.ObjectIdentifier) out.ecCurveOid = curve.valueBlock.toString();
      else out.unrecognised.push(i.type);
    } else if (i.type === OID.rsaEncryption && i.values.length === 1) {
      const bits = parseDer(i.values[0]!, 'csrattrs RSA size');
      if (bits instanceof asn1js.Integer) out.rsaBits = bits.valueBlock.valueDec;
      else out.unrecognised.push(i.type);
    } else out.unrecognised.push(i.type);
  }
  return out;
}

/**
 * Name constraints (RFC 5280 §4.2.1.10, §6.1.3 (b)(c), §6.1.4 (g)) for chain.ts. Node's
 * X509Certificate cannot validate a path, and pkijs' engine re-parses every certificate, so the
 * check is done here on the DER reader, for the name forms a BRSKI PKI uses: directoryName,
 * dNSName, rfc822Name (including emailAddress in the subject), uniformResourceIdentifier and
 * iPAddress. A constraint of any other form (otherName, x400Address, ediPartyName, registeredID)
 * fails closed when the certificate carries a name of that form, as §4.2.1.10 requires.
 */
import { MalformedError } from '../errors.ts';
import { children, contents, isContext, isUniversal, oid as oidOf, readTlv, UNIVERSAL, type Tlv } from '../envelope/der.ts';
import { directoryString } from './der.ts';

export const NAME_CONSTRAINTS_OID = '2.5.29.30';
const EMAIL_ADDRESS_OID = '1.2.840.113549.1.9.1';

type Form = 'dir' | 'dns' | 'email' | 'uri' | 'ip' | 'other';
/** A directory name as canonical RDN strings (compare RDN by RDN from the root). */
type Dn = string[];

export interface NameConstraints { permitted: Subtree[]; excluded: Subtree[] }
interface Subtree { form: Form; dn?: Dn; text?: string; ip?: { addr: Uint8Array; mask: Uint8Array }; tag: number }

/** The names a certificate asserts: its subject and its subjectAltName entries. */
export interface CertificateNames { subject: Dn; emails: string[]; san: Array<{ form: Form; dn?: Dn; text?: string; ip?: Uint8Array; tag: number }> }

const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
const lowerTrim = (s: string) => s.trim().replace(/\s+/g, ' ').toLowerCase();

/** Name (SEQUENCE OF RDN) at `t` → canonical RDNs, plus any emailAddress attribute values. */
function readDn(buf: Uint8Array, t: Tlv): { dn: Dn; emails: string[] } {
  if (!isUniversal(t, UNIVERSAL.sequence)) throw new MalformedError('Name: SEQUENCE expected');
  const dn: Dn = [];
  const emails: string[] = [];
  for (const rdn of children(buf, t)) {
    if (!isUniversal(rdn, UNIVERSAL.set)) throw new MalformedError('Name: RDN SET expected');
    const parts: string[] = [];
    for (const atv of children(buf, rdn)) {
      const [type, value, extra] = children(buf, atv);
      if (!type || !value || extra || !isUniversal(type, UNIVERSAL.oid)) throw new MalformedError('Name: malformed attribute');
      const oid = oidOf(buf, type);
      let text: string;
      try { text = `s:${lowerTrim(directoryString(buf, value, 'Name'))}`; } catch { text = `x:${Buffer.from(buf.subarray(value.start, value.end)).toString('hex')}`; }
      parts.push(`${oid}=${text}`);
      if (oid === EMAIL_ADDRESS_OID && text.startsWith('s:')) emails.push(text.slice(2));
    }
    dn.push(parts.sort().join('+'));
  }
  return { dn, emails };
}

/** One GeneralName element (context-tagged) → its form and comparable value. */
function readGeneralName(buf: Uint8Array, g: Tlv): { form: Form; dn?: Dn; text?: string; raw?: Uint8Array; tag: number } {
  if (g.cls !== 2) throw new MalformedError('GeneralName: context tag expected');
  switch (g.tag) {
    case 1: return { form: 'email', text: latin1(contents(buf, g)), tag: 1 };
    case 2: return { form: 'dns', text: latin1(contents(buf, g)), tag: 2 };
    case 4: {
      const [inner, extra] = children(buf, g);
      if (!inner || extra) throw new MalformedError('GeneralName: directoryName expected');
      return { form: 'dir', dn: readDn(buf, inner).dn, tag: 4 };
    }
    case 6: return { form: 'uri', text: latin1(contents(buf, g)), tag: 6 };
    case 7: return { form: 'ip', raw: contents(buf, g), tag: 7 };
    default: return { form: 'other', tag: g.tag };
  }
}

/** extnValue of a nameConstraints extension → permitted and excluded subtrees. */
export function parseNameConstraints(value: Uint8Array): NameConstraints {
  const top = readTlv(value, 0);
  if (!isUniversal(top, UNIVERSAL.sequence) || top.end !== value.length) throw new MalformedError('NameConstraints: SEQUENCE expected');
  const out: NameConstraints = { permitted: [], excluded: [] };
  for (const part of children(value, top)) {
    const list = isContext(part, 0) ? out.permitted : isContext(part, 1) ? out.excluded : undefined;
    if (!list) throw new MalformedError('NameConstraints: [0] or [1] expected');
    for (const sub of children(value, part)) {
      const [base, ...rest] = children(value, sub);
      if (!base) throw new MalformedError('GeneralSubtree: base expected');
      // RFC 5280: minimum MUST be zero and maximum MUST be absent; anything else we cannot honour.
      for (const r of rest) {
        if (!isContext(r, 0) || contents(value, r).some((b) => b !== 0)) throw new MalformedError('GeneralSubtree: minimum/maximum not supported');
      }
      const n = readGeneralName(value, base);
      if (n.form === 'ip') {
        const raw = n.raw!;
        if (raw.length !== 8 && raw.length !== 32) throw new MalformedError('GeneralSubtree: iPAddress constraint must be address + mask');
        list.push({ form: 'ip', tag: 7, ip: { addr: raw.subarray(0, raw.length / 2), mask: raw.subarray(raw.length / 2) } });
      } else {
        list.push({ form: n.form, tag: n.tag, ...(n.dn ? { dn: n.dn } : {}), ...(n.text !== undefined ? { text: n.text } : {}) });
      }
    }
  }
  return out;
}

/** Subject (`subjectDer`) and subjectAltName extension value (if any) → the names to constrain. */
export function certificateNames(subjectDer: Uint8Array, sanValue: Uint8Array | undefined): CertificateNames {
  const { dn, emails } = readDn(subjectDer, readTlv(subjectDer, 0));
  const san: CertificateNames['san'] = [];
  if (sanValue) {
    const top = readTlv(sanValue, 0);
    if (!isUniversal(top, UNIVERSAL.sequence)) throw new MalformedError('subjectAltName: SEQUENCE expected');
    for (const g of children(sanValue, top)) {
      const n = readGeneralName(sanValue, g);
      san.push({ form: n.form, tag: n.tag, ...(n.dn ? { dn: n.dn } : {}), ...(n.text !== undefined ? { text: n.text } : {}), ...(n.raw ? { ip: n.raw } : {}) });
    }
  }
  return { subject: dn, emails, san };
}

// ---- matching (RFC 5280 §4.2.1.10) -------------------------------------------------------------

function dnWithin(name: Dn, base: Dn): boolean {
  return base.length <= name.length && base.every((rdn, i) => rdn === name[i]);
}

/** dNSName: any name formed by adding labels to the left of the constraint ("" matches all). */
function dnsWithin(name: string, base: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, '');
  const b = base.toLowerCase().replace(/\.$/, '');
  if (b === '') return true;
  if (b.startsWith('.')) return n.endsWith(b); // leading dot: subdomains only (common practice)
  return n === b || n.endsWith(`.${b}`);
}

/** rfc822Name: a mailbox, a host (exact), or ".domain" (any host within it). */
function emailWithin(name: string, base: string): boolean {
  const at = name.lastIndexOf('@');
  if (at < 0) return false;
  const host = name.slice(at + 1).toLowerCase();
  if (base.includes('@')) return name.slice(0, at) === base.slice(0, base.lastIndexOf('@')) && host === base.slice(base.lastIndexOf('@') + 1).toLowerCase();
  const b = base.toLowerCase();
  return b.startsWith('.') ? host.endsWith(b) : host === b;
}

/** URI: the host part; a host (exact) or ".domain" (any host within it). A URI without a host never matches. */
function uriWithin(name: string, base: string): boolean {
  let host: string;
  try { host = new URL(name).hostname.toLowerCase(); } catch { return false; }
  if (host === '') return false;
  const b = base.toLowerCase();
  return b.startsWith('.') ? host.endsWith(b) : host === b;
}

function ipWithin(ip: Uint8Array, c: { addr: Uint8Array; mask: Uint8Array }): boolean {
  if (ip.length !== c.addr.length) return false;
  for (let i = 0; i < ip.length; i++) if ((ip[i]! & c.mask[i]!) !== (c.addr[i]! & c.mask[i]!)) return false;
  return true;
}

type Name = { form: Form; dn?: Dn; text?: string; ip?: Uint8Array; tag: number };

function within(n: Name, s: Subtree): boolean {
  switch (s.form) {
    case 'dir': return dnWithin(n.dn!, s.dn!);
    case 'dns': return dnsWithin(n.text!, s.text!);
    case 'email': return emailWithin(n.text!, s.text!);
    case 'uri': return uriWithin(n.text!, s.text!);
    case 'ip': return ipWithin(n.ip!, s.ip!);
    default: return false;
  }
}

/**
 * Why `names` violate `nc`, or undefined when they satisfy it. For each form, a name must lie in a
 * permitted subtree of that form (when there is one) and in no excluded subtree of that form.
 * `checkSubject` is false for self-issued intermediates (§6.1.3 (b)).
 */
export function nameConstraintViolation(nc: NameConstraints, names: CertificateNames, checkSubject = true): string | undefined {
  const all: Name[] = [...names.san];
  if (checkSubject && names.subject.length > 0) all.push({ form: 'dir', dn: names.subject, tag: 4 });
  // §4.2.1.10: without a subjectAltName, rfc822Name constraints apply to emailAddress in the subject.
  if (checkSubject && names.san.length === 0) for (const e of names.emails) all.push({ form: 'email', text: e, tag: 1 });
  for (const n of all) {
    const sameForm = (s: Subtree) => (n.form === 'other' ? s.form === 'other' && s.tag === n.tag : s.form === n.form);
    const permitted = nc.permitted.filter(sameForm);
    const excluded = nc.excluded.filter(sameForm);
    if (n.form === 'other') {
      if (permitted.length > 0 || excluded.length > 0) return `name constraints on GeneralName [${n.tag}] are not supported`;
      continue;
    }
    if (excluded.some((s) => within(n, s))) return `${describe(n)} is in an excluded subtree`;
    if (permitted.length > 0 && !permitted.some((s) => within(n, s))) return `${describe(n)} is outside the permitted subtrees`;
  }
  return undefined;
}

function describe(n: Name): string {
  switch (n.form) {
    case 'dir': return `directory name "${n.dn!.join(', ')}"`;
    case 'ip': return `IP address ${Buffer.from(n.ip!).toString('hex')}`;
    default: return `${n.form} name "${n.text}"`;
  }
}

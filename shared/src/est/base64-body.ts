/**
 * EST body transfer encoding (RFC 7030 §4, RFC 8951 §3.4): standard base64 of DER, whatever a
 * Content-Transfer-Encoding header says. Receivers tolerate whitespace (CR, LF, space, tab) and
 * missing padding; everything else that is not base64 is refused, so junk never reaches a parser.
 */
import { MalformedError } from '../errors.ts';

const WHITESPACE = /[ \t\r\n]+/g;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function decodeBase64Body(body: string | Uint8Array): Uint8Array {
  const text = typeof body === 'string' ? body : Buffer.from(body).toString('latin1');
  const compact = text.replace(WHITESPACE, '');
  if (compact.length === 0) throw new MalformedError('EST body: empty');
  if (!BASE64.test(compact)) throw new MalformedError('EST body: not base64 (RFC 8951: standard alphabet, whitespace allowed)');
  const unpadded = compact.replace(/=+$/, '');
  if (unpadded.length % 4 === 1) throw new MalformedError('EST body: truncated base64');
  if (compact.length !== unpadded.length && compact.length % 4 !== 0) throw new MalformedError('EST body: bad base64 padding');
  return new Uint8Array(Buffer.from(unpadded, 'base64'));
}

/** Standard base64 with padding in 64-column LF-terminated lines (receivers must ignore the whitespace, RFC 8951). */
export function encodeBase64Body(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64').replace(/.{1,64}/g, '$&\n');
}

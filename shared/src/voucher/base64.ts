/**
 * Base64 for YANG `binary` leaves. Node's Buffer decoder silently skips invalid characters,
 * which is unacceptable for signed protocol data, so the decoder here validates the text first
 * and only then lets Buffer do the conversion.
 *
 * Accepted on input (digest §5, §11 #17/#18): standard (RFC 4648 §4) or URL-safe (§5) alphabet,
 * padded or unpadded. Rejected: whitespace, mixed alphabets, misplaced or wrong padding, a length
 * that cannot encode whole bytes. Non-zero trailing bits are tolerated (published placeholder
 * examples such as "base64encodedvalue==" have them).
 */

const STD = /^[A-Za-z0-9+/]*$/;
const URL = /^[A-Za-z0-9_-]*$/;

export type Base64Alphabet = 'std' | 'url';

/** Standard alphabet, padded: the RFC 7951 form of `binary`. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** URL-safe alphabet, unpadded (JWS). */
export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Alphabet of an unpadded body: 'std' when it could be either, undefined if it fits neither. */
function alphabetOf(body: string): Base64Alphabet | undefined {
  if (STD.test(body)) return 'std';
  if (URL.test(body)) return 'url';
  return undefined;
}

/** Which alphabet a valid base64 text uses ('std' when it could be either). Undefined if invalid. */
export function base64Alphabet(text: string): Base64Alphabet | undefined {
  const body = stripPadding(text);
  return body === undefined ? undefined : alphabetOf(body);
}

/**
 * Strict decoder; returns undefined for anything that is not base64 in one of the accepted forms.
 * `alphabet` restricts the accepted alphabet (default: either).
 */
export function decodeBase64(text: string, alphabet?: Base64Alphabet): Uint8Array | undefined {
  const body = stripPadding(text);
  if (body === undefined) return undefined;
  const found = alphabetOf(body);
  if (found === undefined) return undefined;
  // a body of letters and digits only is both; 'std' was reported for it
  if (alphabet === 'url' && found === 'std' && !URL.test(body)) return undefined;
  if (alphabet === 'std' && found !== 'std') return undefined;
  const buf = Buffer.from(body, found === 'url' ? 'base64url' : 'base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Body without padding, or undefined when the length/padding is impossible. */
function stripPadding(text: string): string | undefined {
  if (typeof text !== 'string') return undefined;
  let body = text;
  // trailing '=' counted from the end (a /=+$/ regex retries at every position of a long text)
  let pad = 0;
  while (pad < text.length && text.charCodeAt(text.length - 1 - pad) === 0x3d) pad++;
  if (pad > 0) {
    // Padded input must be a whole number of quanta with 1 or 2 '=' at the end only.
    if (pad > 2 || text.length % 4 !== 0) return undefined;
    body = text.slice(0, -pad);
    if ((body.length + pad) % 4 !== 0 || body.length % 4 === 0) return undefined;
  }
  if (body.length % 4 === 1) return undefined;
  return body;
}

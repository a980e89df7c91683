/**
 * Request checks the `coap` package does not make (or makes on an error path whose answer never
 * reaches the peer), applied to each well-formed request before the package sees it:
 * unrecognized critical options (RFC 7252 §5.4.1: 4.02), option values of a length outside the
 * option's range and repeated non-repeatable critical options (§5.4.3, §5.4.5: treated as
 * unrecognized), the reserved block size SZX 7 (RFC 7959 §2.2: 4.00), proxy options on a server
 * that is not a proxy (§5.7.2: 5.05), and FETCH without Content-Format (RFC 8132 §2: 4.15).
 */
import { URI_PATH_ABBREV_OPTION } from './discovery.ts';
import { OPTION, parseBlock, type CoapMessage, type CoapOption } from './wire.ts';

export interface Refusal {
  code: string;
  diagnostic: string;
  options?: CoapOption[];
  /** A NON request is rejected (Reset, RFC 7252 §4.3) rather than answered. */
  rejectNon?: boolean;
}

interface Spec { name: string; min: number; max: number; repeatable: boolean }

/** The critical options the registrar implements (RFC 7252 §5.10, RFC 7959 §2.1). */
const CRITICAL: ReadonlyMap<number, Spec> = new Map([
  // Single virtual host: Uri-Host and Uri-Port are understood and need no action (RFC 7252 §5.10.1).
  [OPTION.uriHost, { name: 'Uri-Host', min: 1, max: 255, repeatable: false }],
  [OPTION.uriPort, { name: 'Uri-Port', min: 0, max: 2, repeatable: false }],
  [OPTION.uriPath, { name: 'Uri-Path', min: 0, max: 255, repeatable: true }],
  // Uri-Path-Abbrev: value and repetition rules are the draft's, checked by resolvePath (4.02).
  [URI_PATH_ABBREV_OPTION, { name: 'Uri-Path-Abbrev', min: 0, max: 0xffff, repeatable: true }],
  [OPTION.uriQuery, { name: 'Uri-Query', min: 0, max: 255, repeatable: true }],
  [OPTION.accept, { name: 'Accept', min: 0, max: 2, repeatable: false }],
  [OPTION.block2, { name: 'Block2', min: 0, max: 3, repeatable: false }],
  [OPTION.block1, { name: 'Block1', min: 0, max: 3, repeatable: false }],
]);

const METHOD_FETCH = 5;

const isCritical = (n: number): boolean => (n & 1) === 1;

/** Undefined when the request may go on to the `coap` package. */
export function checkRequest(m: CoapMessage): Refusal | undefined {
  const seen = new Set<number>();
  for (const o of m.options) {
    if (o.number === OPTION.proxyUri || o.number === OPTION.proxyScheme) {
      return { code: '5.05', diagnostic: 'this endpoint is not a proxy' };
    }
    if (!isCritical(o.number)) continue; // elective options we do not know are ignored (§5.4.1)
    const spec = CRITICAL.get(o.number);
    const bad = (why: string): Refusal => ({ code: '4.02', diagnostic: `${why} critical option ${o.number}`.slice(0, 120), rejectNon: true });
    if (!spec) return bad('unrecognized');
    if (o.value.length < spec.min || o.value.length > spec.max) return bad(`bad length of ${spec.name}`);
    if (!spec.repeatable && seen.has(o.number)) return bad(`repeated ${spec.name}`);
    seen.add(o.number);
    if (o.number === OPTION.block1 || o.number === OPTION.block2) {
      if (parseBlock(o.value)!.szx === 7) return { code: '4.00', diagnostic: `${spec.name} SZX 7 is reserved` };
    }
  }
  if ((m.code & 0x1f) === METHOD_FETCH && m.code >> 5 === 0 && !m.options.some((o) => o.number === OPTION.contentFormat)) {
    return { code: '4.15', diagnostic: 'FETCH needs a Content-Format' };
  }
  return undefined;
}

/**
 * The request as the `coap` package should see it, or undefined when it needs no change:
 * - Observe dropped: it switches the package's response to a notification stream (no resource here
 *   is observable; a server that does not add the client to an observer list answers normally,
 *   RFC 7641 §4.1) and, on methods other than GET/FETCH, makes it reply on its address-less error
 *   path, which never arrives.
 * - A zero-length Block2 value written as one zero byte: both mean NUM 0, M 0, SZX 0 (16-byte
 *   blocks; RFC 7252 §3.2 uint), but the package reads the empty form as block size 0 and answered
 *   block 0 with no payload.
 */
export function forPackage(m: CoapMessage): CoapMessage | undefined {
  const observe = m.options.some((o) => o.number === OPTION.observe);
  const emptyBlock2 = m.options.some((o) => o.number === OPTION.block2 && o.value.length === 0);
  if (!observe && !emptyBlock2) return undefined;
  return {
    ...m,
    options: m.options.filter((o) => o.number !== OPTION.observe)
      .map((o) => (o.number === OPTION.block2 && o.value.length === 0 ? { ...o, value: Buffer.of(0) } : o)),
  };
}

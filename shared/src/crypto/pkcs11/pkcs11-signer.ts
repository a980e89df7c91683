/**
 * Signer over a private key held in a PKCS#11 token. The digest is computed in Node and the token
 * signs it with raw CKM_ECDSA (the mechanism every token has; SoftHSM2 lacks CKM_ECDSA_SHA384 on
 * some builds), which returns r||s — already the P1363 form Signer.sign promises.
 *
 * Opening fails closed with an HsmError naming what is wrong (module, token, PIN, key, certificate
 * mismatch). A failure while signing is an HsmError too (503); there is no software fallback.
 */
import { createHash, randomBytes, verify as nodeVerify, type KeyObject, type X509Certificate } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { ALGORITHM_INFO, algorithmForKey, type SignatureAlgorithm, type Signer } from '../signer.ts';
import { ecPublicKey } from './ec.ts';
import { HsmError, ckrOf, ulong, toHsmError } from './errors.ts';
import { getModule, resolveModulePath, type Handle } from './module.ts';
import { resolvePin, type PinSource } from './pin.ts';
import { getTokenPool, type Lease, type PoolOptions, type TokenSessionPool } from './session-pool.ts';
import { parsePkcs11Uri, redactPkcs11Uri, type Pkcs11Uri } from './uri.ts';

export interface Pkcs11SignerOptions extends PinSource, PoolOptions {
  /** RFC 7512 URI naming the private key (type=private or no type). */
  uri: string;
  /** Module path; overrides the URI's module-path. */
  module?: string;
  /** Signer certificate first, then intermediates. The first one must carry the token key. */
  certificates?: readonly X509Certificate[];
  /** Accept a key that is exportable or not sensitive. Off by default: the key must never leave the token. */
  allowExtractable?: boolean;
  /**
   * Call C_Sign on the event-loop thread instead of C_SignAsync on a libuv worker. Faster for an
   * in-process soft token (no thread hop); never use it with a network HSM, where one slow call
   * would stall every request of the process.
   */
  blocking?: boolean;
}

interface KeySelector { label?: string; id?: Uint8Array }

function findObjects(lib: pkcs11js.PKCS11, session: Handle, template: pkcs11js.Template): Handle[] {
  lib.C_FindObjectsInit(session, template);
  try {
    return lib.C_FindObjects(session, 3);
  } finally {
    lib.C_FindObjectsFinal(session);
  }
}

function selectorTemplate(cls: number, sel: KeySelector): pkcs11js.Template {
  const t: pkcs11js.Template = [{ type: pkcs11js.CKA_CLASS, value: cls }];
  if (sel.label !== undefined) t.push({ type: pkcs11js.CKA_LABEL, value: sel.label });
  if (sel.id !== undefined) t.push({ type: pkcs11js.CKA_ID, value: Buffer.from(sel.id) });
  return t;
}

function describe(sel: KeySelector): string {
  const parts = [];
  if (sel.label !== undefined) parts.push(`object=${sel.label}`);
  if (sel.id !== undefined) parts.push(`id=${Buffer.from(sel.id).toString('hex')}`);
  return parts.join(';') || 'any private key';
}

/** The single private key the selector names (0 → key-not-found, >1 → key-ambiguous). */
function findPrivateKey(lib: pkcs11js.PKCS11, session: Handle, sel: KeySelector): Handle {
  const found = findObjects(lib, session, selectorTemplate(pkcs11js.CKO_PRIVATE_KEY, sel));
  if (found.length === 0) throw new HsmError('key-not-found', `no private key matches ${describe(sel)}`);
  if (found.length > 1) throw new HsmError('key-ambiguous', `${found.length} private keys match ${describe(sel)}; add id= to the URI`);
  return found[0]!;
}

export class Pkcs11Signer implements Signer {
  readonly algorithm: SignatureAlgorithm;
  readonly publicKey: KeyObject;
  readonly certificates: readonly X509Certificate[];
  readonly #pool: TokenSessionPool;
  readonly #selector: KeySelector;
  readonly #hash: 'sha256' | 'sha384' | 'sha512';
  readonly #sigLen: number;
  readonly #blocking: boolean;
  #key: Handle | undefined;
  #keyGeneration = -1;

  constructor(pool: TokenSessionPool, selector: KeySelector, publicKey: KeyObject, certificates: readonly X509Certificate[], blocking = false) {
    this.#pool = pool;
    this.#blocking = blocking;
    this.#selector = selector;
    this.publicKey = publicKey;
    this.algorithm = algorithmForKey(publicKey);
    this.certificates = certificates;
    this.#hash = ALGORITHM_INFO[this.algorithm].hash;
    this.#sigLen = 2 * ALGORITHM_INFO[this.algorithm].coordinateBytes;
  }

  /** Label / serial of the token holding the key (for logs and health output). */
  get token(): { label: string; serial: string } {
    const t = this.#pool.token;
    return { label: t.label, serial: t.serial };
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    const digest = createHash(this.#hash).update(data).digest();
    const lease = await this.#pool.acquire();
    let broken = true;
    try {
      const fresh = this.#keyGeneration !== lease.generation;
      const sig = await this.#signDigest(lease, digest, fresh);
      // After every (re)lookup, prove the key is still the one the certificates name: a token swapped
      // for another holding a key with the same label must not yield signatures under the wrong key.
      if (fresh && !nodeVerify(this.#hash, data, { key: this.publicKey, dsaEncoding: 'ieee-p1363' }, sig)) {
        this.#keyGeneration = -1;
        broken = false;
        throw new HsmError('key-mismatch', `the token key ${describe(this.#selector)} does not match the configured public key`);
      }
      broken = false;
      return sig;
    } catch (e) {
      const err = toHsmError(e, 'PKCS#11 signature');
      if (err.failure === 'session-lost') this.#pool.invalidate(err);
      throw err;
    } finally {
      this.#pool.release(lease, broken);
    }
  }

  async #signDigest(lease: Lease, digest: Buffer, fresh: boolean): Promise<Uint8Array> {
    const lib = this.#pool.module.lib;
    if (fresh) {
      // Object handles do not survive a session rebuild: look the key up again.
      this.#key = findPrivateKey(lib, lease.session, this.#selector);
      this.#keyGeneration = lease.generation;
    }
    lib.C_SignInit(lease.session, { mechanism: pkcs11js.CKM_ECDSA }, this.#key!);
    const out = Buffer.alloc(this.#sigLen);
    const sig = this.#blocking ? lib.C_Sign(lease.session, digest, out) : await lib.C_SignAsync(lease.session, digest, out);
    if (sig.length !== this.#sigLen) {
      throw new HsmError('device-error', `token returned a ${sig.length}-byte ECDSA signature, ${this.#sigLen} expected`);
    }
    return new Uint8Array(sig);
  }

  /** Same token key, different certificate list (e.g. once its certificate was issued). */
  withCertificates(certificates: readonly X509Certificate[]): Pkcs11Signer {
    checkCertificateKey(certificates, this.publicKey);
    return new Pkcs11Signer(this.#pool, this.#selector, this.publicKey, certificates, this.#blocking);
  }

  // Nothing secret is held here, but keep logs short and stable.
  toJSON(): unknown {
    return { kind: 'pkcs11', algorithm: this.algorithm, key: describe(this.#selector), certificates: this.certificates.map((c) => c.subject) };
  }
}

function checkCertificateKey(certificates: readonly X509Certificate[], publicKey: KeyObject): void {
  const leaf = certificates[0];
  if (leaf && !leaf.publicKey.equals(publicKey)) {
    throw new HsmError('key-mismatch', `certificate '${leaf.subject}' does not carry the token's public key`);
  }
}

/** Opens a signer for the key the URI names. Every failure is an HsmError (503) with a reason. */
export async function openPkcs11Signer(opts: Pkcs11SignerOptions): Promise<Pkcs11Signer> {
  const uri: Pkcs11Uri = parsePkcs11Uri(opts.uri);
  if (uri.type !== undefined && uri.type !== 'private') {
    throw new HsmError('key-unusable', `URI ${redactPkcs11Uri(opts.uri)} names a '${uri.type}' object; a signer needs type=private`);
  }
  const module = getModule(resolveModulePath(opts.module ?? uri.modulePath, uri.moduleName));
  const pin = resolvePin(opts, uri);
  const pool = getTokenPool(module, uri, pin, opts);
  const selector: KeySelector = { ...(uri.object !== undefined ? { label: uri.object } : {}), ...(uri.id !== undefined ? { id: uri.id } : {}) };
  const lib = module.lib;
  const lease = await pool.acquire();
  let publicKey: KeyObject;
  try {
    const key = findPrivateKey(lib, lease.session, selector);
    const [keyType, canSign, sensitive, extractable, id] = lib.C_GetAttributeValue(lease.session, key, [
      { type: pkcs11js.CKA_KEY_TYPE }, { type: pkcs11js.CKA_SIGN }, { type: pkcs11js.CKA_SENSITIVE },
      { type: pkcs11js.CKA_EXTRACTABLE }, { type: pkcs11js.CKA_ID },
    ]).map((a) => a.value);
    if (ulong(keyType!) !== pkcs11js.CKK_EC) throw new HsmError('key-unusable', `key ${describe(selector)} is not an EC key`);
    if (canSign![0] !== 1) throw new HsmError('key-unusable', `key ${describe(selector)} has CKA_SIGN false`);
    if (!opts.allowExtractable && (sensitive![0] !== 1 || extractable![0] !== 0)) {
      throw new HsmError('key-unusable', `key ${describe(selector)} is extractable or not sensitive; refusing it (allowExtractable to override)`);
    }
    publicKey = readPublicKey(lib, lease.session, selector, id!, opts.certificates);
  } catch (e) {
    pool.release(lease);
    throw e instanceof HsmError ? e : toHsmError(e, 'reading the token key');
  }
  pool.release(lease);
  const signer = new Pkcs11Signer(pool, selector, publicKey, opts.certificates ?? [], opts.blocking ?? false);
  // The first signature checks that the private key matches the public key / certificate.
  await signer.sign(randomBytes(32));
  return signer;
}

/** The public half: the token's public-key object (same CKA_ID, else same label), else the certificate. */
function readPublicKey(lib: pkcs11js.PKCS11, session: Handle, sel: KeySelector, id: Buffer,
  certificates: readonly X509Certificate[] | undefined): KeyObject {
  const pubSel: KeySelector = id.length > 0 ? { id } : sel;
  const found = findObjects(lib, session, selectorTemplate(pkcs11js.CKO_PUBLIC_KEY, pubSel));
  let fromToken: KeyObject | undefined;
  if (found.length === 1) {
    try {
      const [params, point] = lib.C_GetAttributeValue(session, found[0]!, [{ type: pkcs11js.CKA_EC_PARAMS }, { type: pkcs11js.CKA_EC_POINT }]).map((a) => a.value);
      fromToken = ecPublicKey(params!, point!);
    } catch (e) {
      if (e instanceof HsmError) throw e;
      throw new HsmError('key-unusable', `cannot read the public key of ${describe(sel)}${ckrOf(e) ? `: ${ckrOf(e)}` : ''}`, { cause: e });
    }
  }
  const leaf = certificates?.[0];
  if (fromToken && leaf) checkCertificateKey(certificates!, fromToken);
  const key = fromToken ?? leaf?.publicKey;
  if (!key) throw new HsmError('key-unusable', `no public key object for ${describe(sel)} on the token and no certificate configured`);
  return key;
}

/**
 * Secure-element emulator (seed 001). A narrow command surface over keys that never leave it:
 * generate (or, at the factory only, inject) a key, sign, read the public key, build a CSR,
 * install a certificate, retire a credential, read the lifecycle. Private KeyObjects live in an
 * ECMAScript private field: no method returns them and toJSON/inspect show public facts only.
 *
 * Node's TLS stack cannot call back into a signer for the handshake, so `tlsContext()` builds an
 * opaque native SecureContext from the key inside this module — the emulated equivalent of the
 * SE doing the CertificateVerify signature itself.
 */
import { createPublicKey, generateKeyPairSync, randomUUID, sign as nodeSign, X509Certificate, type KeyObject } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { inspect } from 'node:util';
import { ALGORITHM_INFO, algorithmForKey, type SignatureAlgorithm, type Signer } from '@brski/shared/crypto/signer';
import {
  SecureElementError, type CredentialInfo, type CredentialSlot, type CredentialStatus, type EcCurve, type KeyHandle,
  type LifecycleState, type TransitionRecord,
} from './types.ts';

/** The only lifecycle moves the element allows; everything else is refused. */
const LIFECYCLE_NEXT: Record<LifecycleState, LifecycleState | undefined> = {
  blank: 'manufactured',
  manufactured: 'enrolled',
  enrolled: undefined,
};

interface Slot {
  handle: KeyHandle;
  status: CredentialStatus;
  curve: EcCurve;
  algorithm: SignatureAlgorithm;
  publicKey: KeyObject;
  chain: X509Certificate[];
}

export interface SecureElementOptions {
  /** Clock for transition records (tests). */
  clock?: () => Date;
  /** Free-form label shown by inspect/toJSON (e.g. the serial once known). */
  label?: string;
}

export class SecureElement {
  readonly #keys = new Map<string, KeyObject>();
  readonly #slots = new Map<string, Slot>();
  readonly #history: TransitionRecord[] = [];
  /** One native TLS context per active credential: building it (key serialisation + parse) dominates a handshake's CPU. */
  readonly #tls = new Map<string, SecureContext>();
  readonly #clock: () => Date;
  #state: LifecycleState = 'blank';
  label: string | undefined;

  constructor(options: SecureElementOptions = {}) {
    this.#clock = options.clock ?? (() => new Date());
    this.label = options.label;
  }

  /** Current lifecycle state. */
  get state(): LifecycleState { return this.#state; }

  /** Every recorded transition, oldest first (copies). */
  history(): TransitionRecord[] { return this.#history.map((r) => ({ ...r })); }

  /** Public facts about every key ever created, in creation order. */
  credentials(): CredentialInfo[] {
    return [...this.#slots.values()].map((s) => ({
      handle: s.handle, status: s.status, curve: s.curve, chainPem: s.chain.map((c) => c.toString()),
    }));
  }

  /** The active credential of a slot, if any. */
  active(slot: CredentialSlot): { handle: KeyHandle; chain: readonly X509Certificate[] } | undefined {
    for (const s of this.#slots.values()) if (s.handle.slot === slot && s.status === 'active') return { handle: s.handle, chain: [...s.chain] };
    return undefined;
  }

  /**
   * Generates a key pair inside the element. IDevID keys only while blank (a pending one is
   * discarded); LDevID keys only once manufactured (a new key per enrollment / re-enrollment).
   */
  generateKey(slot: CredentialSlot, curve: EcCurve = 'P-256', reason = 'generate'): KeyHandle {
    this.#checkSlotAllowed(slot);
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
    return this.#adopt(slot, privateKey, curve, reason, publicKey);
  }

  /**
   * Factory key injection (many SEs offer it for the IDevID only): takes ownership of an
   * externally generated key while the element is blank. The caller must drop its copy.
   */
  injectIdevidKey(privateKey: KeyObject, reason = 'factory key injection'): KeyHandle {
    if (privateKey.type !== 'private') throw new SecureElementError('bad-certificate', 'a private key is required');
    this.#checkSlotAllowed('idevid');
    const curve = privateKey.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'P-384' : 'P-256';
    algorithmForKey(privateKey); // throws for unsupported keys
    return this.#adopt('idevid', privateKey, curve, reason);
  }

  getPublicKey(handle: KeyHandle): KeyObject { return this.#slot(handle).publicKey; }

  /** ECDSA over `data` with the handle's key; IEEE P1363 (r||s) output. */
  sign(handle: KeyHandle, data: Uint8Array): Promise<Uint8Array> {
    const slot = this.#usable(handle);
    const key = this.#keys.get(handle.id)!;
    return Promise.resolve(new Uint8Array(nodeSign(ALGORITHM_INFO[slot.algorithm].hash, data, { key, dsaEncoding: 'ieee-p1363' })));
  }

  /** A Signer for the handle's key (certificates = the installed chain, if any). */
  signer(handle: KeyHandle): Signer {
    const slot = this.#usable(handle);
    return new SecureElementSigner(this, handle, slot.algorithm, slot.publicKey, slot.chain);
  }

  /**
   * Installs the certificate chain (leaf first) for a generated key. IDevID: blank → manufactured.
   * LDevID: manufactured → enrolled, or a replacement once the previous LDevID is retired.
   */
  installCertificate(handle: KeyHandle, chain: readonly X509Certificate[], reason = 'install'): void {
    const slot = this.#slot(handle);
    const leaf = chain[0];
    if (!leaf) throw new SecureElementError('bad-certificate', 'certificate chain is empty');
    if (slot.status !== 'generated') {
      throw new SecureElementError('invalid-state', `key ${handle.id} is ${slot.status}; only a generated key can receive a certificate`);
    }
    // Key comparison, not SPKI bytes: same answer, without two OpenSSL exports (~0.2 ms).
    if (!leaf.publicKey.equals(slot.publicKey)) throw new SecureElementError('key-mismatch', 'certificate public key does not match the key in the element');
    if (handle.slot === 'idevid') {
      if (this.#state !== 'blank') throw new SecureElementError('credential-present', `IDevID already installed (state ${this.#state})`);
    } else {
      if (this.#state === 'blank') throw new SecureElementError('invalid-state', 'no IDevID yet: an LDevID cannot be installed on a blank element');
      const current = this.active('ldevid');
      if (current) {
        throw new SecureElementError('credential-present', `an active LDevID (${current.handle.id}) exists; retire it before installing another`);
      }
    }
    slot.chain = [...chain];
    this.#setStatus(slot, 'active', reason);
    if (handle.slot === 'idevid') this.#advance('manufactured', reason);
    else if (this.#state === 'manufactured') this.#advance('enrolled', reason);
  }

  /** Retires the active LDevID (it can no longer sign). The IDevID is permanent and cannot be retired. */
  retire(slot: CredentialSlot, reason: string): KeyHandle {
    if (slot === 'idevid') throw new SecureElementError('invalid-state', 'the IDevID is permanent and cannot be retired');
    const current = this.active(slot);
    if (!current) throw new SecureElementError('invalid-state', `no active ${slot} to retire`);
    const s = this.#slots.get(current.handle.id)!;
    this.#setStatus(s, 'retired', reason);
    return current.handle;
  }

  /**
   * Opaque TLS credential for the active credential of `slot` (see file comment). The key is
   * serialised only inside this call, straight into the native context, and only once per
   * credential: the context is kept until the credential is retired.
   *
   * Cost per context (OpenSSL 3.0, measured): ~0.15 ms the bare context, ~0.4 ms decoding the
   * private key, ~0.3 ms the leaf and ~0.25 ms each further certificate; Node accepts the key
   * only as PEM, so that decoding cannot be skipped. SEC1 PEM rather than PKCS#8: the same
   * decoding cost in OpenSSL, but ~10 instead of ~60 µs to produce.
   */
  tlsContext(slot: CredentialSlot, extra: { minVersion?: 'TLSv1.2' | 'TLSv1.3' } = {}): SecureContext {
    const current = this.active(slot);
    if (!current) throw new SecureElementError('invalid-state', `no active ${slot} credential for TLS`);
    const cacheKey = `${current.handle.id}|${extra.minVersion ?? 'TLSv1.2'}`;
    const cached = this.#tls.get(cacheKey);
    if (cached) return cached;
    const key = this.#keys.get(current.handle.id)!;
    const ctx = createSecureContext({
      key: key.export({ type: 'sec1', format: 'pem' }),
      cert: current.chain.map((c) => c.toString()).join('\n'),
      minVersion: extra.minVersion ?? 'TLSv1.2',
    });
    this.#tls.set(cacheKey, ctx);
    return ctx;
  }

  // Only public facts through JSON.stringify and util.inspect.
  toJSON(): unknown {
    return { label: this.label, state: this.#state, credentials: this.credentials().map((c) => ({ ...c, chainPem: c.chainPem.length })) };
  }
  [inspect.custom](): string { return `SecureElement ${JSON.stringify(this.toJSON())}`; }

  // ---- internals ------------------------------------------------------------------------------

  #checkSlotAllowed(slot: CredentialSlot): void {
    if (slot === 'idevid' && this.#state !== 'blank') {
      throw new SecureElementError('invalid-state', `IDevID keys can only be created on a blank element (state ${this.#state})`);
    }
    if (slot === 'ldevid' && this.#state === 'blank') {
      throw new SecureElementError('invalid-state', 'LDevID keys need a manufactured element');
    }
  }

  #adopt(slot: CredentialSlot, privateKey: KeyObject, curve: EcCurve, reason: string, publicKey = createPublicKey(privateKey)): KeyHandle {
    if (slot === 'idevid') {
      // At most one pending IDevID key: a new one replaces it.
      for (const s of this.#slots.values()) if (s.handle.slot === 'idevid' && s.status === 'generated') this.#discard(s, 'replaced by a new key');
    }
    const handle: KeyHandle = Object.freeze({ id: randomUUID(), slot });
    this.#keys.set(handle.id, privateKey);
    const s: Slot = { handle, status: 'generated', curve, algorithm: algorithmForKey(privateKey), publicKey, chain: [] };
    this.#slots.set(handle.id, s);
    this.#record(`credential:${handle.id}`, 'none', 'generated', `${slot} ${reason}`);
    return handle;
  }

  #discard(s: Slot, reason: string): void {
    this.#keys.delete(s.handle.id);
    this.#setStatus(s, 'discarded', reason);
  }

  #slot(handle: KeyHandle): Slot {
    const s = this.#slots.get(handle?.id);
    if (!s || s.handle.slot !== handle.slot) throw new SecureElementError('unknown-key', 'no such key in this element');
    return s;
  }

  #usable(handle: KeyHandle): Slot {
    const s = this.#slot(handle);
    if (s.status === 'retired' || s.status === 'discarded') throw new SecureElementError('key-unusable', `key ${handle.id} is ${s.status}`);
    return s;
  }

  #setStatus(s: Slot, to: CredentialStatus, reason: string): void {
    const from = s.status;
    s.status = to;
    if (to === 'retired' || to === 'discarded') {
      this.#keys.delete(s.handle.id); // zeroise: a retired key never signs again
      for (const k of [...this.#tls.keys()]) if (k.startsWith(`${s.handle.id}|`)) this.#tls.delete(k); // nor authenticates
    }
    this.#record(`credential:${s.handle.id}`, from, to, reason);
  }

  #advance(to: LifecycleState, reason: string): void {
    if (LIFECYCLE_NEXT[this.#state] !== to) throw new SecureElementError('invalid-state', `lifecycle ${this.#state} → ${to} is not allowed`);
    const from = this.#state;
    this.#state = to;
    this.#record('lifecycle', from, to, reason);
  }

  #record(subject: TransitionRecord['subject'], from: string, to: string, reason: string): void {
    this.#history.push(Object.freeze({ at: this.#clock().toISOString(), subject, from, to, reason }));
  }
}

/** Signer view of one SE key: signing goes through the element, so the key stays inside. */
class SecureElementSigner implements Signer {
  readonly #se: SecureElement;
  readonly #handle: KeyHandle;
  readonly algorithm: SignatureAlgorithm;
  readonly publicKey: KeyObject;
  readonly certificates: readonly X509Certificate[];

  constructor(se: SecureElement, handle: KeyHandle, algorithm: SignatureAlgorithm, publicKey: KeyObject,
    certificates: readonly X509Certificate[]) {
    this.#se = se;
    this.#handle = handle;
    this.algorithm = algorithm;
    this.publicKey = publicKey;
    this.certificates = [...certificates];
  }

  sign(data: Uint8Array): Promise<Uint8Array> { return this.#se.sign(this.#handle, data); }

  toJSON(): unknown { return { algorithm: this.algorithm, handle: this.#handle.id, certificates: this.certificates.map((c) => c.subject) }; }
  [inspect.custom](): string { return `SecureElementSigner ${JSON.stringify(this.toJSON())}`; }
}

/**
 * Public vocabulary of the secure-element emulator. Nothing here carries key material: a key is
 * referred to only by an opaque handle, and every reader gets copies.
 */
import { BrskiError, type BrskiErrorOptions } from '@brski/shared/errors';

/** Device lifecycle, one way only (802.1AR): blank → manufactured (IDevID) → enrolled (LDevID). */
export type LifecycleState = 'blank' | 'manufactured' | 'enrolled';

/** Which credential a key belongs to. The IDevID is permanent; LDevIDs are renewed. */
export type CredentialSlot = 'idevid' | 'ldevid';

/**
 * A credential's own status: key generated (certificate pending), active (certificate installed),
 * retired (replaced, can no longer sign), discarded (pending key dropped before any certificate).
 */
export type CredentialStatus = 'generated' | 'active' | 'retired' | 'discarded';

export type EcCurve = 'P-256' | 'P-384';

/** Opaque reference to a key inside the element. Holding it grants use (sign), never export. */
export interface KeyHandle {
  readonly id: string;
  readonly slot: CredentialSlot;
}

export interface CredentialInfo {
  readonly handle: KeyHandle;
  readonly status: CredentialStatus;
  readonly curve: EcCurve;
  /** Certificate chain installed for the key (leaf first); empty until installed. */
  readonly chainPem: readonly string[];
}

/** One recorded state change, of the device lifecycle or of one credential. */
export interface TransitionRecord {
  readonly at: string;
  readonly subject: 'lifecycle' | `credential:${string}`;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
}

/** Why the element refused a command. */
export type SecureElementRefusal =
  | 'invalid-state'        // command not allowed in the current lifecycle state
  | 'credential-present'   // installing over an active credential without retiring it first
  | 'key-mismatch'         // certificate public key is not the handle's key
  | 'unknown-key'          // handle does not name a key of this element
  | 'key-unusable'         // key retired or discarded
  | 'bad-certificate';     // certificate list empty or unparsable

export class SecureElementError extends BrskiError {
  readonly refusal: SecureElementRefusal;
  constructor(refusal: SecureElementRefusal, message: string, options?: BrskiErrorOptions) {
    super(refusal === 'key-mismatch' || refusal === 'bad-certificate' ? 'malformed' : 'conflict', message, options);
    this.refusal = refusal;
  }
}

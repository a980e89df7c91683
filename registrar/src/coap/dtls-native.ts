/**
 * Typed loader for the DTLS addon (registrar/native/dtls, see docs/dtls.md). The addon is a pure
 * engine: datagrams in, datagrams + plaintext out; sockets, peer tables and timers live in JS.
 * Build it with `node registrar/native/dtls/build.mjs` (CI and test setup do).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { BrskiError } from '@brski/shared/errors';

export interface DtlsStep {
  /** Datagrams to send to the peer, each at most the configured MTU. */
  out: Buffer[];
  /** Decrypted application records. */
  data: Buffer[];
  /** The handshake completed during this step. */
  established: boolean;
  /** The association ended (alert, close_notify, fatal error). */
  closed: boolean;
  /** OpenSSL's reason when it ended with an error. */
  error?: string;
}

export interface DtlsSessionInfo { established: boolean; closed: boolean; version?: string; cipher?: string; cipherStandardName?: string }

export interface NativeDtlsSession {
  feed(datagram: Buffer): DtlsStep;
  handshake(): DtlsStep;
  write(plaintext: Buffer): DtlsStep;
  /** ms until the handshake retransmission timer fires, -1 when none runs. */
  timeoutMs(): number;
  handleTimeout(): DtlsStep;
  /** DER certificates the peer presented, leaf first. */
  peerChain(): Buffer[];
  info(): DtlsSessionInfo;
  shutdown(): DtlsStep;
  destroy(): void;
}

export interface DtlsContextOptions {
  server: boolean;
  /** PEM: end-entity certificate first, then its chain. */
  certChain?: string;
  key?: string;
  /** OpenSSL cipher list (DTLS 1.2). */
  ciphers?: string;
  groups?: string;
  /** Server: refuse handshakes without a client certificate. */
  requireClientCert?: boolean;
  /** Maximum datagram payload, default 1024 (digest §9.3: assume PMTU 1024 for the handshake). */
  mtu?: number;
  /** TEST ONLY, client: sign CertificateVerify with this (PEM) key instead of the certificate's. */
  unsafeCertificateVerifyKey?: string;
}

export interface NativeDtlsContext {
  /** Server: stateless cookie exchange; returns a session once the peer echoed a valid cookie. */
  listen(peer: string, datagram: Buffer): DtlsStep & { session?: NativeDtlsSession };
  /** Client: a new session; call handshake() for the ClientHello. */
  connect(peer?: string): NativeDtlsSession;
}

interface Addon {
  DtlsContext: new (o: DtlsContextOptions) => NativeDtlsContext;
  opensslVersion: string;
}

/** RFC 7925 mandatory suite plus AES-128-GCM (issue 6); GCM first for its 16-byte tag when both are offered. */
export const DEFAULT_CIPHERS = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-CCM8';

const ADDON_PATH = fileURLToPath(new URL('../../native/dtls/build/Release/brski_dtls.node', import.meta.url));
let addon: Addon | undefined;

export function loadDtlsAddon(): Addon {
  if (addon) return addon;
  if (!existsSync(ADDON_PATH)) {
    throw new BrskiError('unavailable', `DTLS addon not built (${ADDON_PATH}); run: node registrar/native/dtls/build.mjs`);
  }
  addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
  return addon;
}

export function createDtlsContext(o: DtlsContextOptions): NativeDtlsContext {
  const { DtlsContext } = loadDtlsAddon();
  return new DtlsContext({ ciphers: DEFAULT_CIPHERS, ...o });
}

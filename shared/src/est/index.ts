/** EST encodings (RFC 7030 / 8951 / 9908). */
export * from './base64-body.ts';
export * from './certs-only.ts';
export * from './csrattrs.ts';

export * from './errors.ts';
export * from './media.ts';
export * from './crypto/signer.ts';
export * from './crypto/ecdsa.ts';
export * from './crypto/software-signer.ts';
export * from './voucher/model.ts';

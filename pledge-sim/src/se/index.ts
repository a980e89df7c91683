export * from './types.ts';
export * from './secure-element.ts';
export * from './csr.ts';

/** Voucher model, leaf table, codecs (JSON / YANG-CBOR), validator and telemetry formats. */
export * from './model.ts';
export * from './leaves.ts';
export * from './base64.ts';
export * from './cbor-codec.ts';
export * from './json.ts';
export * from './cbor.ts';
export * from './validate.ts';
export * from './telemetry.ts';

export * from './proxy.ts';
export * from './circuit.ts';
export * from './udp-relay.ts';
export * from './records.ts';
export * from './upstream.ts';

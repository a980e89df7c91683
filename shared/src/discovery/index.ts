export * from './mdns.ts';
export * from './interfaces.ts';
export * from './candidates.ts';
export * from './registrar-announcer.ts';

export * from './histogram.ts';
export * from './fleet.ts';
export * from './report.ts';
export * from './progress.ts';
export * from './sources.ts';

/** @brski/pledge-sim public surface: secure element, factory station, pledge, fleet. */
export * from './se/index.ts';
export { FactoryStation, type StationOptions } from './factory/station.ts';
export { Pledge, DEFAULT_ASSERTIONS, type PledgeConfig, type PledgeEvent, type OnboardResult, type PhaseTimings } from './pledge/pledge.ts';
export { PledgeFailure, isPledgeFailure, PLEDGE_FAILURE_CODES, type PledgeFailureReason } from './pledge/errors.ts';
export { DEFAULT_RETRY, type RetryPolicy } from './pledge/transport.ts';
export * from './fleet/index.ts';

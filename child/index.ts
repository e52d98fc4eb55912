export { generation, listen, onDrain, openConnections, pacedClose, ready, requestReload, serve, shared, stats, ticketKey } from './sdk.ts';
export type { GenerationInfo, ListenerRequest, TicketKey } from './runtime/runtime.ts';
export type { SdkStats, Shared } from './sdk.ts';
export type { SharedValue } from '../shared/shared-value.ts';
export type { Family, HistogramOptions, StatOptions } from './stats/stats-api.ts';
export type { Counter, Gauge, Histogram } from '../shared/stats/index.ts';
export { BatonError, isBatonError, type ErrorCode } from '../shared/errors.ts';

export { generation, listen, onDrain, openConnections, pacedClose, ready, serve, stats } from './sdk.ts';
export type { GenerationInfo, ListenerRequest } from './runtime.ts';
export type { Counter, Gauge, Histogram } from '../shared/stats/index.ts';
export { BatonError, isBatonError, type ErrorCode } from '../shared/errors.ts';

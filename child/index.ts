export { generation, listen, onDrain, openConnections, ready, serve } from './sdk.ts';
export type { GenerationInfo, ListenerRequest } from './runtime.ts';

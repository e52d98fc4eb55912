export { useRuntime } from './sdk.ts';
export { StandaloneRuntime } from './standalone.ts';
export type { Runtime } from './runtime.ts';

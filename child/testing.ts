export { useRuntime } from './sdk.ts';
export { StandaloneRuntime } from './standalone.ts';
export { createTestRuntime, type TestRuntime, type TestRuntimeOptions } from './test-runtime.ts';
export type { Runtime } from './runtime.ts';

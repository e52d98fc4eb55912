export { useRuntime } from './sdk.ts';
export { StandaloneRuntime } from './runtime/standalone.ts';
export { createTestRuntime, type TestRuntime, type TestRuntimeOptions } from './runtime/test-runtime.ts';
export type { Runtime } from './runtime/runtime.ts';

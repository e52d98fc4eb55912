/** The canary window after a reload, its evaluation, rollback, and the max-draining bound. Re-exports only. */
export { Canary, type CanaryDeps, type CanaryGeneration, type CanaryOutcome, type PromoteOptions } from './canary.ts';
export { evaluate, type CanaryConfig, type Verdict } from './evaluate.ts';
export { figuresOf, quantile, since, type Figures } from './figures.ts';
export { canarySchema, toCanaryConfig, maxDrainingSchema } from './config.ts';

import { operationsFactory } from './operations.js';
import type { ServiceFactory } from './service.js';

/**
 * Every API the local cloud serves, in start order. A service that others use in process
 * (Storage for Build, Run for Build's images) comes before them.
 */
export const serviceFactories: ServiceFactory[] = [
  // First: Run, Build, Artifact Registry and Video Intelligence keep their operations here.
  operationsFactory,
];

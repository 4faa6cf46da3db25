import { artifactRegistryFactory } from './artifactregistry/service.js';
import { bigqueryServiceFactory } from './bigquery/service.js';
import { buildFactory } from './build/service.js';
import { dataflowService } from './dataflow/service.js';
import { operationsFactory } from './operations.js';
import { pubsubService } from './pubsub/service.js';
import { runFactory } from './run/service.js';
import type { ServiceFactory } from './service.js';
import { serviceUsageFactory } from './serviceusage/service.js';
import { storageServiceFactory } from './storage/service.js';
import { videoServiceFactory } from './video/service.js';

/**
 * Every API the local cloud serves, in start order. A service that others use in process
 * (Storage for Build, Run for Build's images) comes before them.
 */
export const serviceFactories: ServiceFactory[] = [
  // Before Build and Video Intelligence, which read source archives and videos from it.
  storageServiceFactory,
  // First: Run, Build, Artifact Registry and Video Intelligence keep their operations here.
  operationsFactory,
  // The image registry Build pushes to and Run pulls from, with its Docker repositories.
  artifactRegistryFactory,
  // Builds source archives from Storage into images in the registry.
  buildFactory,
  // Runs the registry's images as services; restarts the ones that were serving.
  runFactory,
  // Records which APIs a project turned on; needs the operations store.
  serviceUsageFactory,
  // Reports the emulator's topics, subscriptions and memory; it serves no routes.
  pubsubService,
  // The BigQuery v2 REST API over DuckDB; Dataflow's jobs write to it.
  bigqueryServiceFactory,
  // After Storage and BigQuery, which its jobs use over HTTP; it restarts running jobs.
  dataflowService,
  // Reads videos from Storage in process; keeps its operations in the shared store.
  videoServiceFactory,
];

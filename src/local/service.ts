import type { Logger } from '../log.js';
import type { Route } from './http.js';

/**
 * The contract between the local cloud and each API it emulates. A service is built by a
 * `ServiceFactory`, contributes routes to the one HTTP server, and is started and stopped with
 * the daemon. Services reach each other in process through `cloud.service(name)`, never over
 * HTTP, and never open another service's files.
 */

export interface LocalCloud {
  /** `STATE_DIR/local`; each service keeps its data in `dataDir/<service name>/`. */
  readonly dataDir: string;
  /** Base URL of the loopback server, such as `http://127.0.0.1:8790`. */
  readonly endpoint: string;
  /** `host:port` of the Pub/Sub emulator, as in `PUBSUB_EMULATOR_HOST`. */
  readonly pubsubHost: string;
  /** The project the local cloud answers for. */
  readonly projectId: string;
  readonly log: Logger;
  service<T extends LocalService>(name: string): T;
}

export interface ResourceLine {
  /** Such as `table`, `bucket`, `topic`, `service`, `job`. */
  kind: string;
  name: string;
  /** Row count, URL, state: a short detail for `local status`. */
  detail?: string;
}

export interface ServiceStatus {
  name: string;
  endpoint: string;
  state: 'running' | 'stopped' | 'failed';
  detail?: string;
  resources: ResourceLine[];
  /** Resident memory of a child process this service owns (the JVM, a job), in bytes. */
  childMemoryBytes?: number;
}

export interface LocalService {
  readonly name: string;
  readonly routes: Route[];
  /** Called once, in registration order, after the Pub/Sub emulator answers. */
  start(): Promise<void>;
  /** Stops children and flushes data; must not throw. */
  stop(): Promise<void>;
  status(): Promise<ServiceStatus>;
}

export type ServiceFactory = (cloud: LocalCloud) => LocalService;

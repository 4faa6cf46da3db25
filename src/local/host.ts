import { mkdirSync } from 'node:fs';

import type { Logger } from '../log.js';
import type { Route } from './http.js';
import { LocalHttpServer } from './server.js';
import type { LocalCloud, LocalService, ServiceFactory, ServiceStatus } from './service.js';

export interface HostOptions {
  dataDir: string;
  /** Port for the loopback server; 0 picks a free one. */
  port: number;
  /** `host:port` of a Pub/Sub emulator that is already answering. */
  pubsubHost: string;
  projectId: string;
  log: Logger;
  factories: ServiceFactory[];
  /** Routes mounted before the services' own, such as the daemon's `/_cymbal/` routes. */
  routes?: Route[];
}

export interface RunningHost {
  readonly endpoint: string;
  readonly port: number;
  readonly cloud: LocalCloud;
  status(): Promise<ServiceStatus[]>;
  close(): Promise<void>;
}

/**
 * Builds the services, mounts their routes on one loopback server and starts them in order.
 * The daemon runs this in its own process; tests run it in theirs with a temporary directory.
 */
export async function openHost(options: HostOptions): Promise<RunningHost> {
  mkdirSync(options.dataDir, { recursive: true });
  const server = new LocalHttpServer(options.log.child('http'));
  if (options.routes) server.add(options.routes);
  const port = await server.listen(options.port);
  const endpoint = `http://127.0.0.1:${port}`;
  const services = new Map<string, LocalService>();
  const cloud: LocalCloud = {
    dataDir: options.dataDir,
    endpoint,
    pubsubHost: options.pubsubHost,
    projectId: options.projectId,
    log: options.log,
    service<T extends LocalService>(name: string): T {
      const found = services.get(name);
      if (!found) throw new Error(`The local cloud has no service named "${name}".`);
      return found as T;
    },
  };
  for (const factory of options.factories) {
    const service = factory(cloud);
    services.set(service.name, service);
    server.add(service.routes);
  }
  const started: LocalService[] = [];
  try {
    for (const service of services.values()) {
      await service.start();
      started.push(service);
    }
  } catch (error) {
    for (const service of started.reverse()) await service.stop();
    await server.close();
    throw error;
  }

  return {
    endpoint,
    port,
    cloud,
    async status() {
      // One service that fails to report must not hide the others.
      return Promise.all(
        [...services.values()].map((s) =>
          s.status().catch((error: unknown): ServiceStatus => ({
            name: s.name,
            endpoint,
            state: 'failed',
            detail: error instanceof Error ? error.message : String(error),
            resources: [],
          })),
        ),
      );
    },
    async close() {
      for (const service of [...services.values()].reverse()) await service.stop();
      await server.close();
    },
  };
}

import type { Route } from './http.js';
import { ApiError } from './http.js';
import type { ServiceStatus } from './service.js';

/**
 * The daemon's own routes on the loopback server, under `/_cymbal/` where no Google API lives:
 * `GET /_cymbal/health` for "is it up, and is it the process daemon.json names", and
 * `GET /_cymbal/status` for `cymbal-lab local status`.
 */

export interface DaemonHealth {
  ok: true;
  pid: number;
  version: string;
  uptimeSeconds: number;
}

export interface ProcessMemory {
  pid: number | undefined;
  /** Resident memory in bytes; undefined when the process is not running. */
  rssBytes: number | undefined;
}

export interface LocalCloudStatus {
  daemon: ProcessMemory & {
    version: string;
    startedAt: string;
    endpoint: string;
    pubsubHost: string;
    projectId: string;
    /** The Node.js heap in use, part of `rssBytes`. */
    heapUsedBytes: number;
  };
  /** The Pub/Sub emulator's JVM, a separate process: its memory is not in the daemon's. */
  emulator: ProcessMemory & { state: string; restarts: number };
  services: ServiceStatus[];
}

export interface AdminSource {
  version: string;
  startedAt: Date;
  endpoint(): string;
  pubsubHost: string;
  projectId: string;
  emulator(): ProcessMemory & { state: string; restarts: number };
  /** Undefined until every service has started. */
  services(): Promise<ServiceStatus[]> | undefined;
}

export function adminRoutes(source: AdminSource): Route[] {
  return [
    {
      method: 'GET',
      path: /^\/_cymbal\/health$/,
      handler: () => {
        const health: DaemonHealth = {
          ok: true,
          pid: process.pid,
          version: source.version,
          uptimeSeconds: Math.round(process.uptime()),
        };
        return Promise.resolve({ json: health });
      },
    },
    {
      method: 'GET',
      path: /^\/_cymbal\/status$/,
      handler: async () => {
        const services = source.services();
        if (!services) throw new ApiError('UNAVAILABLE', 'The local cloud is still starting.');
        const memory = process.memoryUsage();
        const status: LocalCloudStatus = {
          daemon: {
            pid: process.pid,
            rssBytes: memory.rss,
            heapUsedBytes: memory.heapUsed,
            version: source.version,
            startedAt: source.startedAt.toISOString(),
            endpoint: source.endpoint(),
            pubsubHost: source.pubsubHost,
            projectId: source.projectId,
          },
          emulator: source.emulator(),
          services: await services,
        };
        return { json: status };
      },
    },
  ];
}

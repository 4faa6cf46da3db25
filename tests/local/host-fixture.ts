import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Clients } from '../../src/cloud/clients.js';
import { createClients } from '../../src/cloud/clients.js';
import { silentLogger } from '../../src/log.js';
import type { RunningHost } from '../../src/local/host.js';
import { openHost } from '../../src/local/host.js';
import type { ServiceFactory } from '../../src/local/service.js';

/**
 * Some of the local cloud's services in this process, on a free port of 127.0.0.1, with a data
 * folder of their own and the official clients pointed at them: for tests that need a few APIs
 * without the daemon. Pub/Sub stays unreachable unless an emulator host is given.
 */
export interface TestHost {
  dir: string;
  /** Where the services keep their data, below `dir`. */
  dataDir: string;
  host: RunningHost;
  clients: Clients;
  /** Closes the clients and the services and removes the data folder. */
  close(): Promise<void>;
}

export async function openTestHost(options: {
  project: string;
  region: string;
  factories: ServiceFactory[];
  pubsubHost?: string;
}): Promise<TestHost> {
  const dir = mkdtempSync(join(tmpdir(), `cymbal-${options.project}-`));
  const pubsub = options.pubsubHost ?? '127.0.0.1:1';
  const dataDir = join(dir, 'local');
  const host = await openHost({
    dataDir,
    port: 0,
    pubsubHost: pubsub,
    projectId: options.project,
    log: silentLogger,
    factories: options.factories,
  });
  const clients = createClients({
    kind: 'local',
    projectId: options.project,
    region: options.region,
    local: { api: host.endpoint, pubsub },
  });
  return {
    dir,
    dataDir,
    host,
    clients,
    close: async () => {
      await clients.close();
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

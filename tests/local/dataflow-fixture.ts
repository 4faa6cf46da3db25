import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { Table } from '@google-cloud/bigquery';

import type { Clients } from '../../src/cloud/clients.js';
import { createClients } from '../../src/cloud/clients.js';
import { errorMessage } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { bigqueryServiceFactory } from '../../src/local/bigquery/service.js';
import type { DataflowService, DataflowServiceOptions } from '../../src/local/dataflow/service.js';
import { createDataflowService } from '../../src/local/dataflow/service.js';
import type { RunningHost } from '../../src/local/host.js';
import { openHost } from '../../src/local/host.js';
import type { RunningEmulator } from '../../src/local/pubsub/emulator.js';
import { startEmulator } from '../../src/local/pubsub/emulator.js';
import { storageServiceFactory } from '../../src/local/storage/service.js';

/**
 * A real local cloud for the Dataflow tests: the Pub/Sub emulator on a free port, and Storage,
 * BigQuery (DuckDB in a temporary directory) and Dataflow on one loopback server, with the
 * official clients pointed at them.
 */

export const PROJECT = 'dataflow-test';
export const REGION = 'us-central1';
export const CLASSIC = `gs://dataflow-templates-${REGION}/latest/PubSub_Subscription_to_BigQuery`;
export const FLEX = `gs://dataflow-templates-${REGION}/latest/flex/PubSub_to_BigQuery_Flex`;

/** The lab's event table, reduced: REQUIRED strings, a number, a record and a repeated record. */
export const EVENT_SCHEMA = {
  fields: [
    { name: 'event_datetime', type: 'TIMESTAMP', mode: 'NULLABLE' },
    { name: 'event', type: 'STRING', mode: 'REQUIRED' },
    { name: 'user_id', type: 'STRING', mode: 'REQUIRED' },
    { name: 'seq', type: 'INTEGER', mode: 'NULLABLE' },
    {
      name: 'ecommerce',
      type: 'RECORD',
      mode: 'NULLABLE',
      fields: [
        {
          name: 'items',
          type: 'RECORD',
          mode: 'REPEATED',
          fields: [
            { name: 'item_id', type: 'INTEGER', mode: 'NULLABLE' },
            { name: 'price', type: 'FLOAT', mode: 'NULLABLE' },
          ],
        },
        {
          name: 'purchase',
          type: 'RECORD',
          mode: 'NULLABLE',
          fields: [{ name: 'value', type: 'FLOAT', mode: 'NULLABLE' }],
        },
      ],
    },
  ],
};

export interface Cloud {
  dir: string;
  emulator: RunningEmulator;
  host: RunningHost;
  clients: Clients;
  dataflow: DataflowService;
  /** Stops the host (jobs stop but stay RUNNING on disk) and opens a new one on the same data. */
  reopen(): Promise<void>;
  close(): Promise<void>;
}

export async function openCloud(options: DataflowServiceOptions = {}): Promise<Cloud> {
  const dir = mkdtempSync(join(tmpdir(), 'cymbal-dataflow-'));
  const emulator = await startEmulator({
    port: 0,
    dataDir: dir,
    log: silentLogger,
    projectIds: [PROJECT],
    saveIntervalMs: 0,
  });
  let dataflow: DataflowService | undefined;
  const open = () =>
    openHost({
      dataDir: dir,
      port: 0,
      pubsubHost: emulator.host,
      projectId: PROJECT,
      log: silentLogger,
      factories: [
        storageServiceFactory,
        bigqueryServiceFactory,
        (c) => (dataflow = createDataflowService(c, options)),
      ],
    });
  const clientsFor = (h: RunningHost) =>
    createClients({
      kind: 'local',
      projectId: PROJECT,
      region: REGION,
      local: { api: h.endpoint, pubsub: emulator.host },
    });
  const cloud: Cloud = {
    dir,
    emulator,
    host: await open(),
    clients: undefined as unknown as Clients,
    dataflow: undefined as unknown as DataflowService,
    async reopen() {
      await cloud.clients.close();
      await cloud.host.close();
      cloud.host = await open();
      cloud.clients = clientsFor(cloud.host);
      cloud.dataflow = dataflow as DataflowService;
    },
    async close() {
      await cloud.clients.close();
      await cloud.host.close();
      await emulator.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  cloud.clients = clientsFor(cloud.host);
  cloud.dataflow = dataflow as DataflowService;
  return cloud;
}

/** Creates a topic and a pull subscription; returns the subscription's full name. */
export async function subscription(clients: Clients, name: string, ackSeconds = 10) {
  const [topic] = await clients.pubsub.createTopic(`${name}-topic`);
  const [sub] = await topic.createSubscription(`${name}-sub`, { ackDeadlineSeconds: ackSeconds });
  return { topic, name: sub.name };
}

export async function eventTable(clients: Clients, dataset: string, table: string): Promise<Table> {
  const ds = clients.bigquery.dataset(dataset);
  const [exists] = await ds.exists();
  if (!exists) await ds.create();
  const [created] = await ds.createTable(table, { schema: EVENT_SCHEMA });
  return created;
}

export async function launchClassic(
  clients: Clients,
  jobName: string,
  parameters: Record<string, string>,
  gcsPath = CLASSIC,
) {
  const [response] = await clients.templates.launchTemplate({
    projectId: PROJECT,
    location: REGION,
    gcsPath,
    launchParameters: { jobName, parameters },
  });
  const id = response.job?.id;
  if (!id) throw new Error('the launch answered no job id');
  return id;
}

export async function jobState(clients: Clients, jobId: string): Promise<string> {
  const [job] = await clients.jobs.getJob({ projectId: PROJECT, location: REGION, jobId });
  return String(job.currentState);
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${errorMessage(last)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export async function rowsOf(table: Table): Promise<Record<string, unknown>[]> {
  const [rows] = await table.getRows({ maxResults: 100_000 });
  return rows as Record<string, unknown>[];
}

export async function waitForState(clients: Clients, jobId: string, state: string) {
  return waitFor(`job ${jobId} to reach ${state}`, async () =>
    (await jobState(clients, jobId)) === state ? state : undefined,
  );
}

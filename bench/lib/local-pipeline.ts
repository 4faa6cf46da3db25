import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';

import type { Clients } from '../../src/cloud/clients.js';
import { createClients } from '../../src/cloud/clients.js';
import type { Target } from '../../src/cloud/target.js';
import type { Logger } from '../../src/log.js';
import { daemonPaths } from '../../src/local/daemon-info.js';
import { ensureLocalCloud, runningDaemon, stopLocalCloud } from '../../src/local/lifecycle.js';
import { freePort } from '../../src/local/pubsub/emulator.js';
import { loadEventSchema } from '../../src/part1/schema.js';
import { stateName } from '../../src/steps/dataflow.js';
import { childrenOf } from './proc.js';

/**
 * Part 1's whole pipeline on the local cloud, for benchmarks: the daemon in a state directory
 * of its own (Pub/Sub emulator, BigQuery on DuckDB, Dataflow), the lab's topic, subscription,
 * dataset and table, the "Pub/Sub Subscription to BigQuery" template launched through the
 * official Dataflow client, and the ingest app as a process on a free port of 127.0.0.1.
 */

export const NAMES = {
  project: 'cymbal-bench',
  region: 'us-central1',
  topic: 'ecommerce-events',
  subscription: 'ecommerce-events-pull',
  dataset: 'retail_dataset',
  table: 'ecommerce_events',
  job: 'ecommerce-events-ps-to-bq-stream',
} as const;

export interface LocalPipeline {
  clients: Clients;
  /** Port of the ingest app on 127.0.0.1. */
  appPort: number;
  /** Base URL of the local cloud's REST APIs. */
  apiEndpoint: string;
  /** `project.dataset.table`, for queries. */
  tableName: string;
  pids: { app: number; pipeline: number; daemon: number; emulator: number };
  stop(): Promise<void>;
}

export interface PipelineOptions {
  stateDir: string;
  log: Logger;
  /** Extra node flags for the ingest app, such as `--cpu-prof`. */
  appNodeArgs?: string[];
}

export async function startLocalPipeline(options: PipelineOptions): Promise<LocalPipeline> {
  const { stateDir, log } = options;
  const { project, region } = NAMES;
  const endpoints = await ensureLocalCloud({
    stateDir,
    port: 0,
    pubsubPort: 0,
    projectId: project,
    log,
  });
  const daemon = await runningDaemon(stateDir);
  if (!daemon) throw new Error(`The local cloud in ${stateDir} stopped right after it started.`);
  const target: Target = { kind: 'local', projectId: project, region, local: endpoints };
  const clients = createClients(target);
  let app: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (app && app.exitCode === null) {
      const exited = new Promise((resolve) => app?.once('exit', resolve));
      app.kill('SIGTERM');
      await exited;
    }
    await clients.close();
    await stopLocalCloud(stateDir);
  };

  try {
    const [topic] = await clients.pubsub.createTopic(NAMES.topic);
    await topic.createSubscription(NAMES.subscription, { ackDeadlineSeconds: 20 });
    await clients.bigquery.createDataset(NAMES.dataset, { location: 'US' });
    await clients.bigquery.dataset(NAMES.dataset).createTable(NAMES.table, {
      schema: { fields: await loadEventSchema(process.cwd()) },
      timePartitioning: { type: 'DAY', field: 'event_datetime' },
    });
    const pipeline = await launchJob(clients, daemon.pid);

    const appPort = await freePort();
    const logFile = join(daemonPaths(stateDir).dir, 'ingest-app.log');
    app = spawn(
      process.execPath,
      [...(options.appNodeArgs ?? []), join(process.cwd(), 'assets/ingest-app/src/index.js')],
      {
        env: {
          ...process.env,
          PORT: String(appPort),
          HOST: '127.0.0.1',
          TOPIC: NAMES.topic,
          PUBSUB_EMULATOR_HOST: endpoints.pubsub,
          GOOGLE_CLOUD_PROJECT: project,
          METADATA_SERVER_DETECTION: 'none',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const out = createWriteStream(logFile);
    app.stdout?.pipe(out);
    app.stderr?.pipe(out);
    await waitForHealth(appPort, app);
    const emulator = childrenOf(daemon.pid).find((c) => c.command.includes('java'));
    log.info('ingest app on 127.0.0.1:%d (log %s)', appPort, logFile);
    return {
      clients,
      appPort,
      apiEndpoint: endpoints.api,
      tableName: `${project}.${NAMES.dataset}.${NAMES.table}`,
      pids: {
        app: app.pid ?? 0,
        pipeline,
        daemon: daemon.pid,
        emulator: emulator?.pid ?? 0,
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Launches the template, waits until the job runs, and returns its process id. */
async function launchJob(clients: Clients, daemonPid: number): Promise<number> {
  const { project, region } = NAMES;
  const [launched] = await clients.templates.launchTemplate({
    projectId: project,
    location: region,
    gcsPath: `gs://dataflow-templates-${region}/latest/PubSub_Subscription_to_BigQuery`,
    launchParameters: {
      jobName: NAMES.job,
      parameters: {
        inputSubscription: `projects/${project}/subscriptions/${NAMES.subscription}`,
        outputTableSpec: `${project}:${NAMES.dataset}.${NAMES.table}`,
      },
    },
  });
  const jobId = launched.job?.id;
  if (!jobId) throw new Error('The Dataflow launch answered without a job id.');
  const deadline = Date.now() + 60_000;
  for (;;) {
    const [job] = await clients.jobs.getJob({ projectId: project, location: region, jobId });
    const state = stateName(job.currentState);
    const child = childrenOf(daemonPid).find((c) => c.command.includes('pubsub-to-bigquery'));
    if (state === 'JOB_STATE_RUNNING' && child) return child.pid;
    if (/FAILED|CANCELLED|DONE|DRAINED/.test(state)) {
      throw new Error(`The Dataflow job ${jobId} ended as ${state} before it ran.`);
    }
    if (Date.now() > deadline) throw new Error(`The Dataflow job ${jobId} is still ${state}.`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function waitForHealth(port: number, app: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (app.exitCode !== null) throw new Error(`The ingest app exited with ${app.exitCode}.`);
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('The ingest app did not answer /healthz within 30 s.');
}

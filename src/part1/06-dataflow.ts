import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import {
  checkJobRunning,
  cancelJob,
  findActiveJob,
  startTimeoutMs,
  waitForRunning,
} from '../steps/dataflow.js';
import { check, createOrKeep, deleteIfPresent, waitUntil } from '../steps/kit.js';
import type { PlanItem, StepContext, StepDefinition } from '../steps/types.js';
import type { LabConfig } from '../config.js';

/** Google's classic template, in the job's region. */
export const templatePath = (c: LabConfig): string =>
  `gs://dataflow-templates-${c.region}/latest/PubSub_Subscription_to_BigQuery`;

/** Holds the job's temporary files and, with --udf, the transform. */
export const stagingBucket = (c: LabConfig): string => `${c.project}_dataflow_staging`;

const UDF_OBJECT = 'udf/transform.js';
const UDF_FUNCTION = 'process';
/** The event name of verification probes; the query step leaves them out of its counts. */
export const PROBE_EVENT = 'cymbal_lab_probe';

function parameters(ctx: StepContext): Record<string, string> {
  const c = ctx.config;
  const parameters: Record<string, string> = {
    inputSubscription: `projects/${c.project}/subscriptions/${c.subscription}`,
    outputTableSpec: `${c.project}:${c.dataset}.${c.table}`,
  };
  if (ctx.options.udf) {
    parameters.javascriptTextTransformGcsPath = `gs://${stagingBucket(c)}/${UDF_OBJECT}`;
    parameters.javascriptTextTransformFunctionName = UDF_FUNCTION;
  }
  return parameters;
}

/** A BigQuery timestamp as the lab's events carry it: `2020-11-16 22:59:59`. */
export function eventTime(date: Date): string {
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

/**
 * Publishes a probe event straight to the topic and waits until its row can be queried:
 * proof that messages flow through the running job into the table.
 */
async function probe(ctx: StepContext): Promise<string> {
  const c = ctx.config;
  const userId = `probe-${randomUUID()}`;
  const started = Date.now();
  await ctx.clients.pubsub.topic(c.topic).publishMessage({
    json: { event: PROBE_EVENT, user_id: userId, event_datetime: eventTime(new Date()) },
    attributes: { origin: 'cymbal-lab-verify' },
  });
  const timeoutMs = ctx.target.kind === 'local' ? 30_000 : 300_000;
  await waitUntil(
    'the probe event to reach the table',
    async () => {
      const [rows] = await ctx.clients.bigquery.query({
        query: `SELECT COUNT(*) AS n FROM \`${c.project}.${c.dataset}.${c.table}\` WHERE user_id = @id`,
        params: { id: userId },
      });
      return Number((rows[0] as { n: number }).n) > 0 ? true : undefined;
    },
    { timeoutMs, intervalMs: 200, signal: ctx.signal },
  );
  return `a probe event reached ${c.dataset}.${c.table} in ${((Date.now() - started) / 1000).toFixed(1)} s`;
}

export const streamingJob: StepDefinition = {
  part: 1,
  number: 6,
  title: 'Stream events into BigQuery with Dataflow',
  explain:
    'Google\'s "Pub/Sub Subscription to BigQuery" template reads each message, maps the JSON ' +
    "keys to the table's columns and writes the rows. Messages that are not valid JSON or that " +
    'the table rejects go to a dead-letter table instead of being lost. An optional JavaScript ' +
    'function (--udf) can reshape each message on the way.',
  commands: (c) => [
    `gcloud storage buckets create gs://${stagingBucket(c)} --location ${c.region}`,
    `gcloud dataflow jobs run ${c.jobName} --region ${c.region} ` +
      `--gcs-location ${templatePath(c)} --staging-location gs://${stagingBucket(c)}/temp ` +
      `--parameters inputSubscription=projects/${c.project}/subscriptions/${c.subscription},` +
      `outputTableSpec=${c.project}:${c.dataset}.${c.table}`,
  ],
  needs: ['table', 'subscription'],
  outputs: ['jobId'],

  async plan(ctx) {
    const c = ctx.config;
    const [bucketExists] = await ctx.clients.storage.bucket(stagingBucket(c)).exists();
    const job = await findActiveJob(ctx, c.jobName);
    const wantUdf = Boolean(ctx.options.udf);
    const items: PlanItem[] = [
      { action: bucketExists ? 'keep' : 'create', resource: `bucket ${stagingBucket(c)}` },
    ];
    if (wantUdf)
      items.push({ action: 'update', resource: `object ${UDF_OBJECT}`, detail: 'upload the UDF' });
    if (!job)
      items.push({
        action: 'create',
        resource: `Dataflow job ${c.jobName}`,
        detail: templatePath(c),
      });
    else if ((ctx.outputs.udf === 'on') !== wantUdf) {
      items.push({
        action: 'update',
        resource: `Dataflow job ${c.jobName}`,
        detail: 'cancel and launch again',
      });
    } else
      items.push({
        action: 'keep',
        resource: `Dataflow job ${c.jobName}`,
        detail: `id ${job.id ?? '?'}`,
      });
    return items;
  },

  async ensure(ctx) {
    const c = ctx.config;
    const { storage, templates } = ctx.clients;
    const bucket = stagingBucket(c);
    await createOrKeep(ctx.log, `bucket ${bucket}`, () =>
      storage.createBucket(bucket, { location: c.region }),
    );
    const wantUdf = Boolean(ctx.options.udf);
    if (wantUdf) {
      const source = await readFile(join(ctx.assetsRoot, 'assets/udf/transform.js'));
      await storage
        .bucket(bucket)
        .file(UDF_OBJECT)
        .save(source, { contentType: 'application/javascript' });
      ctx.log.info(`uploaded the UDF to gs://${bucket}/${UDF_OBJECT}`);
    }
    const running = await findActiveJob(ctx, c.jobName);
    if (running?.id && (ctx.outputs.udf === 'on') === wantUdf) {
      ctx.log.debug(`Dataflow job ${c.jobName} is already active (${running.id})`);
      const job = await waitForRunning(ctx, running.id, startTimeoutMs(ctx));
      return { jobId: job.id ?? running.id, udf: wantUdf ? 'on' : 'off' };
    }
    if (running) await cancelJob(ctx, c.jobName);

    const [launched] = await templates.launchTemplate({
      projectId: c.project,
      location: c.region,
      gcsPath: templatePath(c),
      launchParameters: {
        jobName: c.jobName,
        parameters: parameters(ctx),
        environment: { tempLocation: `gs://${bucket}/temp` },
      },
    });
    const jobId = launched.job?.id;
    if (!jobId) throw new Error('The Dataflow launch answered without a job id.');
    ctx.log.info(`launched Dataflow job ${c.jobName} (${jobId}); waiting for it to run`);
    await waitForRunning(ctx, jobId, startTimeoutMs(ctx));
    return { jobId, udf: wantUdf ? 'on' : 'off' };
  },

  async verify(ctx) {
    const c = ctx.config;
    const running = await checkJobRunning(ctx, c.jobName);
    if (!running.ok)
      return [
        running,
        { name: 'events flow to BigQuery', ok: false, detail: 'the job is not running' },
      ];
    return [running, await check('events flow to BigQuery', () => probe(ctx))];
  },

  async teardown(ctx) {
    const c = ctx.config;
    await cancelJob(ctx, c.jobName);
    const bucket = ctx.clients.storage.bucket(stagingBucket(c));
    await deleteIfPresent(ctx.log, `bucket ${stagingBucket(c)}`, async () => {
      await bucket.deleteFiles({ force: true });
      await bucket.delete();
    });
  },
};

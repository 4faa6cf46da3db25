import { randomUUID } from 'node:crypto';
import { statSync } from 'node:fs';

import type { LabConfig } from '../config.js';
import { templateBucket, videoBucket } from '../config.js';
import {
  cancelJob,
  findActiveJob,
  startTimeoutMs,
  checkJobRunning,
  waitForRunning,
} from '../steps/dataflow.js';
import { check, expectThat, waitUntil } from '../steps/kit.js';
import type { PlanItem, StepContext, StepDefinition } from '../steps/types.js';
import {
  ensureTemplateImage,
  planTemplateImage,
  removeTemplateImage,
  templateImage,
  templateImageCommands,
} from './template-image.js';
import { sampleVideos } from './videos.js';

/** The flex template spec, in the template bucket, as the lab's `flex-template build` writes it. */
export const specPath = (c: LabConfig): string => `gs://${templateBucket(c)}/video_analytics.json`;

function parameters(c: LabConfig): Record<string, string> {
  return {
    inputNotificationSubscription: `projects/${c.project}/subscriptions/${c.notificationSubscription}`,
    outputTopic: `projects/${c.project}/topics/${c.detectionTopic}`,
    errorTopic: `projects/${c.project}/topics/${c.errorTopic}`,
    features: 'OBJECT_TRACKING',
    entities: c.entities,
    confidenceThreshold: String(c.confidenceThreshold),
    windowInterval: '1',
    tableReference: `${c.project}:${c.videoDataset}.${c.videoTable}`,
  };
}

/** The spec file `gcloud dataflow flex-template build` writes: the image and the parameters. */
function templateSpec(c: LabConfig) {
  const parameter = (name: string, helpText: string, isOptional = false) => ({
    name,
    label: name,
    helpText,
    isOptional,
  });
  return {
    image: templateImage(c),
    sdkInfo: { language: 'JAVA' },
    metadata: {
      name: 'video-analytics',
      description: 'Tracks objects in uploaded videos with the Video Intelligence API',
      parameters: [
        parameter('inputNotificationSubscription', 'Subscription to the bucket notifications'),
        parameter('outputTopic', 'Topic for filtered annotations'),
        parameter('errorTopic', 'Topic for errors'),
        parameter('features', 'Video Intelligence features, OBJECT_TRACKING'),
        parameter('entities', 'Entities to publish, comma separated', true),
        parameter('confidenceThreshold', 'Lowest confidence published', true),
        parameter('windowInterval', 'Seconds per row', true),
        parameter('tableReference', 'PROJECT:DATASET.TABLE for the annotations'),
      ],
    },
  };
}

/**
 * Uploads the smallest sample clip under a probe name and waits for its rows: proof that an
 * upload travels through the notification, the job and the Video Intelligence API to BigQuery.
 */
async function probeVideo(ctx: StepContext): Promise<string> {
  const c = ctx.config;
  const clips = await sampleVideos(ctx.assetsRoot);
  const smallest = clips.sort((a, b) => statSync(a).size - statSync(b).size)[0];
  expectThat(smallest !== undefined, 'no sample video in sample-data/videos');
  const name = `cymbal-lab-probe/${randomUUID()}.mp4`;
  const started = Date.now();
  await ctx.clients.storage.bucket(videoBucket(c)).upload(smallest!, { destination: name });
  const rows = await waitUntil(
    'the probe video to reach the table',
    async () => {
      const [found] = await ctx.clients.bigquery.query({
        query: `SELECT COUNT(*) AS n FROM \`${c.project}.${c.videoDataset}.${c.videoTable}\` WHERE file_name = @name`,
        params: { name: `gs://${videoBucket(c)}/${name}` },
      });
      const n = Number((found[0] as { n: number }).n);
      return n > 0 ? n : undefined;
    },
    {
      timeoutMs: ctx.target.kind === 'local' ? 120_000 : 900_000,
      intervalMs: 500,
      signal: ctx.signal,
    },
  );
  return `a probe video became ${rows} rows in ${((Date.now() - started) / 1000).toFixed(1)} s`;
}

export const trackingJob: StepDefinition = {
  part: 2,
  number: 5,
  title: 'Launch the video object-tracking pipeline',
  explain:
    'A Dataflow flex template reads the upload notifications, asks the Video Intelligence API ' +
    'to track objects in each new video, writes every annotation to BigQuery and publishes ' +
    'the listed entities above the confidence threshold to the results topic. Google ships ' +
    'this template as source: on Google Cloud the step first builds its container image with ' +
    'Cloud Build (once; `--force` builds it again), while the local Dataflow service runs the ' +
    'template itself. Change the entities and the threshold with `config set entities` and ' +
    '`config set confidenceThreshold`.',
  commands: (c) => [
    ...templateImageCommands(c, specPath(c)),
    `gcloud dataflow flex-template run ${c.videoJobName} --region ${c.region} ` +
      `--template-file-gcs-location ${specPath(c)} --parameters ` +
      Object.entries(parameters(c))
        .map(([k, v]) => `${k}=${v}`)
        .join(','),
  ],
  needs: ['notificationSubscription', 'videoTable', 'detectionSubscription'],
  outputs: ['videoJobId'],

  async plan(ctx) {
    const c = ctx.config;
    const job = await findActiveJob(ctx, c.videoJobName);
    const image = await planTemplateImage(ctx);
    const items: PlanItem[] = [
      ...image,
      { action: 'update', resource: `template spec ${specPath(c)}` },
    ];
    const sameOptions = ctx.outputs.videoJobOptions === JSON.stringify(parameters(c));
    const newImage = image.some((item) => item.action !== 'keep');
    if (!job) items.push({ action: 'create', resource: `Dataflow job ${c.videoJobName}` });
    else if (!sameOptions || newImage)
      items.push({
        action: 'update',
        resource: `Dataflow job ${c.videoJobName}`,
        detail: `cancel and launch with the new ${sameOptions ? 'image' : 'options'}`,
      });
    else
      items.push({
        action: 'keep',
        resource: `Dataflow job ${c.videoJobName}`,
        detail: `id ${job.id ?? '?'}`,
      });
    return items;
  },

  async ensure(ctx) {
    const c = ctx.config;
    const image = await ensureTemplateImage(ctx);
    const spec = ctx.clients.storage.bucket(templateBucket(c)).file('video_analytics.json');
    await spec.save(JSON.stringify(templateSpec(c), null, 2), { contentType: 'application/json' });
    ctx.log.info(`wrote the template spec to ${specPath(c)}`);
    const wanted = JSON.stringify(parameters(c));
    // A job keeps running the image it was launched from: a new image needs a new launch.
    const digest = image.templateImageDigest;
    const launched: Record<string, string> = digest ? { videoJobImage: digest } : {};
    const sameImage = !digest || ctx.outputs.videoJobImage === digest;
    const running = await findActiveJob(ctx, c.videoJobName);
    if (running?.id && ctx.outputs.videoJobOptions === wanted && sameImage) {
      await waitForRunning(ctx, running.id, startTimeoutMs(ctx));
      return { ...image, ...launched, videoJobId: running.id, videoJobOptions: wanted };
    }
    if (running) await cancelJob(ctx, c.videoJobName);
    const [response] = await ctx.clients.flexTemplates.launchFlexTemplate({
      projectId: c.project,
      location: c.region,
      launchParameter: {
        jobName: c.videoJobName,
        containerSpecGcsPath: specPath(c),
        parameters: parameters(c),
      },
    });
    const jobId = response.job?.id;
    if (!jobId) throw new Error('The flex template launch answered without a job id.');
    ctx.log.info(`launched Dataflow job ${c.videoJobName} (${jobId}); waiting for it to run`);
    await waitForRunning(ctx, jobId, startTimeoutMs(ctx));
    return { ...image, ...launched, videoJobId: jobId, videoJobOptions: wanted };
  },

  async verify(ctx) {
    const c = ctx.config;
    const running = await checkJobRunning(ctx, c.videoJobName);
    if (!running.ok) return [running];
    return [running, await check('an upload becomes rows', () => probeVideo(ctx))];
  },

  async teardown(ctx) {
    const c = ctx.config;
    await cancelJob(ctx, c.videoJobName);
    await removeTemplateImage(ctx);
  },
};

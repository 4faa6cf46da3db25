import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { Clients } from '../../src/cloud/clients.js';
import { silentLogger } from '../../src/log.js';
import { bigqueryServiceFactory } from '../../src/local/bigquery/service.js';
import type { DataflowService } from '../../src/local/dataflow/service.js';
import { createDataflowService } from '../../src/local/dataflow/service.js';
import { operationsFactory } from '../../src/local/operations.js';
import type { RunningEmulator } from '../../src/local/pubsub/emulator.js';
import { startEmulator } from '../../src/local/pubsub/emulator.js';
import { storageServiceFactory } from '../../src/local/storage/service.js';
import { videoServiceFactory } from '../../src/local/video/service.js';
import { annotationSchema } from '../../src/part2/schema.js';
import { ffmpegPath } from '../../src/vision/decode.js';
import type { TestHost } from '../local/host-fixture.js';
import { openTestHost } from '../local/host-fixture.js';
import { waitFor } from '../local/dataflow-fixture.js';

/**
 * The video analytics flex template end to end on the local cloud, driven only by the official
 * clients: videos uploaded to a bucket with a notification, the job launched from its spec path,
 * rows in the annotations table, relevant rows on the results subscription, API failures on the
 * error subscription (a corrupt upload, a deleted object), other files ignored, and a
 * notification delivered again to a restarted job process, which writes nothing twice.
 */

const PROJECT = 'video-e2e';
const REGION = 'us-central1';
const BUCKET = `${PROJECT}_videos`;
const SPEC = `gs://${PROJECT}_dataflow_template_config/video_analytics.json`;
const samples = join(process.cwd(), 'sample-data', 'videos');

/** The first seconds of a sample video: enough for the detector, quick to annotate. */
function clip(sample: string, seconds: number, out: string): string {
  execFileSync(ffmpegPath(), [
    ...['-v', 'error', '-y', '-i', join(samples, sample), '-t', String(seconds)],
    ...['-c:v', 'libx264', '-preset', 'ultrafast', '-an', out],
  ]);
  return out;
}

interface Pulled {
  data: string;
  attributes: Record<string, string>;
}

interface TableRow {
  file_name: string;
  entity: string;
  frame_data: { timeOffset: string; confidence: number; processing_timestamp: string }[];
}

describe('video analytics flex template on the local cloud', () => {
  let dir: string;
  let emulator: RunningEmulator;
  let local: TestHost;
  let clients: Clients;
  let dataflow: DataflowService | undefined;
  let jobId: string;
  let catClip: string;
  let bicycleClip: string;

  const parameters = {
    inputNotificationSubscription: `projects/${PROJECT}/subscriptions/gcs-notification-subscription`,
    outputTopic: `projects/${PROJECT}/topics/object-detection-topic`,
    errorTopic: `projects/${PROJECT}/topics/error-topic`,
    features: 'OBJECT_TRACKING',
    entities: 'window,person,cat',
    confidenceThreshold: '0.3',
    windowInterval: '1',
    tableReference: `${PROJECT}:video_analytics.object_tracking_analysis`,
  };

  const launch = (jobName: string, params: Record<string, string>) =>
    clients.flexTemplates.launchFlexTemplate({
      projectId: PROJECT,
      location: REGION,
      launchParameter: { jobName, containerSpecGcsPath: SPEC, parameters: params },
    });

  /** Pulls whatever the subscription holds now, and acks it. */
  async function pull(subscription: string): Promise<Pulled[]> {
    const name = `projects/${PROJECT}/subscriptions/${subscription}`;
    const [response] = await clients.subscriber.pull(
      { subscription: name, maxMessages: 100, returnImmediately: true },
      { timeout: 5000 },
    );
    const received = response.receivedMessages ?? [];
    const ackIds = received.map((r) => r.ackId ?? '').filter(Boolean);
    if (ackIds.length > 0) await clients.subscriber.acknowledge({ subscription: name, ackIds });
    return received.map((r) => ({
      data: Buffer.from(r.message?.data ?? new Uint8Array()).toString(),
      attributes: { ...(r.message?.attributes ?? {}) },
    }));
  }

  async function rows(): Promise<TableRow[]> {
    const [result] = await clients.bigquery
      .dataset('video_analytics')
      .table('object_tracking_analysis')
      .getRows();
    return result as TableRow[];
  }

  const metrics = () => dataflow?.engine.metrics(jobId);
  /** The job's metrics once it has read `count` notifications and holds none. */
  const settled = (count: number) => {
    const m = metrics();
    return m && m.elementsRead >= count && m.inFlight === 0 ? m : undefined;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cymbal-video-e2e-'));
    catClip = clip('cat.mp4', 2, join(dir, 'cat.mp4'));
    bicycleClip = clip('bicycle.mp4', 2, join(dir, 'bicycle.mp4'));
    emulator = await startEmulator({
      port: 0,
      dataDir: dir,
      log: silentLogger,
      projectIds: [PROJECT],
      saveIntervalMs: 0,
    });
    local = await openTestHost({
      project: PROJECT,
      region: REGION,
      pubsubHost: emulator.host,
      factories: [
        storageServiceFactory,
        operationsFactory,
        bigqueryServiceFactory,
        videoServiceFactory,
        (cloud) => (dataflow = createDataflowService(cloud)),
      ],
    });
    ({ clients } = local);
    for (const [topic, subscription] of [
      ['gcs-notification-topic', 'gcs-notification-subscription'],
      ['object-detection-topic', 'object-detection-subscription'],
      ['error-topic', 'error-subscription'],
    ] as const) {
      const [created] = await clients.pubsub.createTopic(topic);
      await created.createSubscription(subscription, { ackDeadlineSeconds: 10 });
    }
    const [bucket] = await clients.storage.createBucket(BUCKET);
    await bucket.createNotification('gcs-notification-topic', { payloadFormat: 'JSON_API_V1' });
    const [dataset] = await clients.bigquery.createDataset('video_analytics', { location: 'US' });
    await dataset.createTable('object_tracking_analysis', { schema: annotationSchema });
  }, 60_000);

  afterAll(async () => {
    await local?.close();
    await emulator?.stop();
    if (!process.env.KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a launch with a missing or malformed parameter as INVALID_ARGUMENT', async () => {
    // The REST transport reports the status as gRPC's 3 or as HTTP's 400, depending on the
    // client version; the body is Google's error JSON with status INVALID_ARGUMENT either way.
    const invalid = async (params: Record<string, string>, message: RegExp) => {
      const error = (await launch('video-bad', params).then(
        () => undefined,
        (e: unknown) => e,
      )) as { code?: unknown; message?: string } | undefined;
      expect([3, 400]).toContain(error?.code);
      expect(error?.message).toMatch(/INVALID_ARGUMENT|invalid/);
      expect(error?.message).toMatch(message);
    };
    const missing: Record<string, string> = { ...parameters };
    delete missing.tableReference;
    await invalid(missing, /Missing required template parameter \\?"tableReference\\?"/);
    await invalid({ ...parameters, confidenceThreshold: 'very' }, /confidenceThreshold/);
    await invalid({ ...parameters, features: 'LABEL_DETECTION' }, /OBJECT_TRACKING/);
  });

  it('annotates uploads into rows, publishes relevant ones and reports failures', async () => {
    const [response] = await launch('video-object-tracking', parameters);
    jobId = response.job?.id ?? '';
    expect(jobId).not.toBe('');
    await waitFor('the job to run', async () => {
      const [job] = await clients.jobs.getJob({ projectId: PROJECT, location: REGION, jobId });
      return String(job.currentState) === 'JOB_STATE_RUNNING' ? true : undefined;
    });

    const bucket = clients.storage.bucket(BUCKET);
    await Promise.all([
      bucket.upload(catClip, { destination: 'cat.mp4' }),
      // Part 1 of a 5-second split: its rows name walk.MP4 and start at 5 s.
      bucket.upload(bicycleClip, { destination: 'walk~1.MP4' }),
      bucket.file('broken.mp4').save(Buffer.from('not a video at all')),
      bucket.file('notes.txt').save('ignored: not a video name'),
    ]);

    const all = await waitFor(
      'rows for both videos',
      async () => {
        const found = await rows();
        const files = new Set(found.map((r) => r.file_name));
        return files.has(`gs://${BUCKET}/cat.mp4`) && files.has(`gs://${BUCKET}/walk.MP4`)
          ? found
          : undefined;
      },
      120_000,
      250,
    );
    const cat = all.filter((r) => r.file_name === `gs://${BUCKET}/cat.mp4`);
    expect(cat.map((r) => r.entity)).toContain('cat');
    for (const row of all) {
      expect(row.frame_data.length).toBeGreaterThan(0);
      // Every frame of a row lies in one 1-second window.
      const windows = new Set(row.frame_data.map((f) => Math.floor(Number(f.timeOffset))));
      expect(windows.size).toBe(1);
      expect(row.frame_data[0]?.timeOffset).toMatch(/^\d+\.\d+$/);
    }
    const split = all.filter((r) => r.file_name === `gs://${BUCKET}/walk.MP4`);
    expect(split.length).toBeGreaterThan(0);
    for (const row of split) {
      for (const frame of row.frame_data)
        expect(Number(frame.timeOffset)).toBeGreaterThanOrEqual(5);
    }

    const published = await waitFor('a result message', async () => {
      const got = await pull('object-detection-subscription');
      return got.length > 0 ? got : undefined;
    });
    for (const message of published) {
      expect(message.attributes).toEqual({ entity: 'object_tracking' });
      const body = JSON.parse(message.data) as TableRow;
      expect(['window', 'person', 'cat']).toContain(body.entity);
      expect(body.frame_data.some((f) => f.confidence >= 0.3)).toBe(true);
    }

    const errors = await waitFor(
      'the error for the corrupt upload',
      async () => {
        const got = await pull('error-subscription');
        return got.length > 0 ? got : undefined;
      },
      60_000,
    );
    expect(errors).toHaveLength(1);
    expect(errors[0]?.attributes).toEqual({ error_type: 'api_response' });
    const error = JSON.parse(errors[0]?.data ?? '{}') as Record<string, unknown>;
    expect(error).toEqual({
      file_name: `gs://${BUCKET}/broken.mp4`,
      transaction_timestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      error_code: 3,
      error_message: expect.stringMatching(/video/i),
    });

    // Four notifications were read: three videos by name, one text file acked and skipped.
    const seen = await waitFor(
      'all notifications settled',
      () => Promise.resolve(settled(4)),
      60_000,
    );
    expect(seen).toMatchObject({ elementsRead: 4, dropped: 1, deadLettered: 1 });
    expect(seen.elementsWritten).toBe(all.length);
  }, 240_000);

  it('writes nothing twice when a restarted job gets a notification again', async () => {
    const before = await rows();
    const pid = dataflow?.engine.pidOf(jobId) ?? 0;
    expect(pid).toBeGreaterThan(0);
    process.kill(pid, 'SIGKILL');
    await waitFor('a new job process', () => {
      const next = dataflow?.engine.pidOf(jobId);
      return Promise.resolve(next && next !== pid ? next : undefined);
    });

    // Pub/Sub delivers at least once: send the cat's notification again, as a redelivery would.
    const [meta] = await clients.storage.bucket(BUCKET).file('cat.mp4').getMetadata();
    const redelivered = await clients.pubsub.topic('gcs-notification-topic').publishMessage({
      json: meta,
      attributes: {
        eventType: 'OBJECT_FINALIZE',
        payloadFormat: 'JSON_API_V1',
        bucketId: BUCKET,
        objectId: 'cat.mp4',
        objectGeneration: String(meta.generation),
      },
    });
    expect(redelivered).toBeTruthy();
    const progressFile = join(
      local.dir,
      'local',
      'dataflow',
      'jobs',
      jobId,
      'video-progress.jsonl',
    );
    expect(readFileSync(progressFile, 'utf8')).toContain(`${BUCKET}/cat.mp4#${meta.generation}`);
    await waitFor('the redelivery to be acked', () => Promise.resolve(settled(5)));
    const after = await rows();
    expect(after).toHaveLength(before.length);
    expect(await pull('object-detection-subscription')).toEqual([]);

    // A notification for an object deleted before the job got to it: NOT_FOUND, as an error.
    await clients.pubsub.topic('gcs-notification-topic').publishMessage({
      json: { bucket: BUCKET, name: 'gone.mp4', generation: '1' },
      attributes: {
        eventType: 'OBJECT_FINALIZE',
        payloadFormat: 'JSON_API_V1',
        bucketId: BUCKET,
        objectId: 'gone.mp4',
        objectGeneration: '1',
      },
    });
    const [gone] = await waitFor('the error for the deleted object', async () => {
      const got = await pull('error-subscription');
      return got.length > 0 ? got : undefined;
    });
    expect(gone?.attributes).toEqual({ error_type: 'api_response' });
    expect(JSON.parse(gone?.data ?? '{}')).toMatchObject({
      file_name: `gs://${BUCKET}/gone.mp4`,
      error_code: 5,
      error_message: expect.stringMatching(/not found/i),
    });
  }, 90_000);

  it('drains on request: the job stops reading and ends DRAINED', async () => {
    await clients.jobs.updateJob({
      projectId: PROJECT,
      location: REGION,
      jobId,
      job: { requestedState: 'JOB_STATE_DRAINED' },
    });
    await waitFor(
      'DRAINED',
      async () => {
        const [job] = await clients.jobs.getJob({ projectId: PROJECT, location: REGION, jobId });
        return String(job.currentState) === 'JOB_STATE_DRAINED' ? true : undefined;
      },
      20_000,
      200,
    );
    expect(metrics()?.state).toBe('drained');
  }, 30_000);
});

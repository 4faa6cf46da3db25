import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { Clients } from '../../src/cloud/clients.js';
import { operationsFactory } from '../../src/local/operations.js';
import { storageServiceFactory } from '../../src/local/storage/service.js';
import { videoServiceFactory } from '../../src/local/video/service.js';
import { ffmpegPath } from '../../src/vision/decode.js';
import type { TestHost } from './host-fixture.js';
import { openTestHost } from './host-fixture.js';

/**
 * The local Video Intelligence API as the official client sees it: videos uploaded through the
 * Storage client, annotated with OBJECT_TRACKING as long-running operations polled to the end,
 * and the errors Google gives for an unimplemented feature, a missing object and a file that
 * is not a video.
 */

const OBJECT_TRACKING = 9;
const LABEL_DETECTION = 1;
const videos = join(process.cwd(), 'sample-data', 'videos');

interface Progress {
  annotationProgress?: { progressPercent?: number | null }[] | null;
}

interface Annotation {
  entity?: { entityId?: string | null; description?: string | null; languageCode?: string | null };
  confidence?: number | null;
  frames?: {
    normalizedBoundingBox?: { left?: number | null; right?: number | null } | null;
    timeOffset?: { seconds?: unknown; nanos?: number | null } | null;
  }[];
  segment?: { startTimeOffset?: unknown; endTimeOffset?: unknown } | null;
  trackId?: unknown;
}

describe('local Video Intelligence API', () => {
  let local: TestHost;
  let dir: string;
  let clients: Clients;
  const bucket = 'p1_videos';

  beforeAll(async () => {
    local = await openTestHost({
      project: 'p1',
      region: 'us-central1',
      factories: [storageServiceFactory, operationsFactory, videoServiceFactory],
    });
    ({ dir, clients } = local);
    // The first second of each clip keeps the test quick: 5 sampled frames each.
    for (const clip of ['cat', 'bicycle']) {
      const source = join(videos, `${clip}.mp4`);
      execFileSync(ffmpegPath(), [
        '-v',
        'error',
        '-i',
        source,
        '-t',
        '1',
        '-c',
        'copy',
        join(dir, `${clip}.mp4`),
      ]);
    }
    await clients.storage.createBucket(bucket);
    await clients.storage.bucket(bucket).upload(join(dir, 'cat.mp4'), { destination: 'cat.mp4' });
    await clients.storage
      .bucket(bucket)
      .upload(join(dir, 'bicycle.mp4'), { destination: 'in/bicycle.mp4' });
    await clients.storage.bucket(bucket).file('notes.mp4').save('these are notes, not a video');
  });

  afterAll(async () => {
    await local?.close();
  });

  it('tracks objects in two videos at once, both making progress', async () => {
    const [cat] = await clients.video.annotateVideo({
      inputUri: `gs://${bucket}/cat.mp4`,
      features: [OBJECT_TRACKING],
    });
    const [bicycle] = await clients.video.annotateVideo({
      inputUri: `gs://${bucket}/in/bicycle.mp4`,
      features: [OBJECT_TRACKING],
    });
    expect(cat.name).toMatch(/^projects\/p1\/locations\/[a-z0-9-]+\/operations\/.+/);

    // Poll both the way the client does, recording the progress each one reports.
    const seen = new Map<string, number[]>([
      [cat.name ?? '', []],
      [bicycle.name ?? '', []],
    ]);
    let bicycleBeforeCatDone = 0;
    for (;;) {
      const [catNow, bicycleNow] = await Promise.all(
        [cat.name, bicycle.name].map((name) =>
          clients.video.checkAnnotateVideoProgress(name ?? ''),
        ),
      );
      const percent = (op: typeof catNow): number =>
        (op?.metadata as Progress | undefined)?.annotationProgress?.[0]?.progressPercent ?? 0;
      seen.get(cat.name ?? '')?.push(percent(catNow));
      seen.get(bicycle.name ?? '')?.push(percent(bicycleNow));
      if (!catNow?.done) bicycleBeforeCatDone = Math.max(bicycleBeforeCatDone, percent(bicycleNow));
      if (catNow?.done && bicycleNow?.done) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Frames are shared between the jobs, so the second moved before the first finished.
    expect(bicycleBeforeCatDone).toBeGreaterThan(0);
    for (const percents of seen.values()) {
      expect(percents.at(-1)).toBe(100);
      expect([...percents].sort((a, b) => a - b)).toEqual(percents);
    }

    const [catResult] = await cat.promise();
    const results = catResult.annotationResults ?? [];
    expect(results).toHaveLength(1);
    expect(results[0]?.inputUri).toBe(`/${bucket}/cat.mp4`);
    const annotations = (results[0]?.objectAnnotations ?? []) as Annotation[];
    const cats = annotations.filter((a) => a.entity?.entityId === '/m/01yrx');
    expect(cats.length).toBeGreaterThanOrEqual(1);
    const track = cats[0] as Annotation;
    expect(track.entity).toMatchObject({ description: 'cat', languageCode: 'en-US' });
    expect(track.confidence).toBeGreaterThan(0.5);
    // A cat in every sampled frame of a 1 s clip at 5 frames/s.
    expect(track.frames?.length).toBe(5);
    const box = track.frames?.[0]?.normalizedBoundingBox;
    expect(box?.left).toBeGreaterThanOrEqual(0);
    expect(box?.right).toBeLessThanOrEqual(1);
    expect(Number(track.frames?.[1]?.timeOffset?.nanos)).toBe(200_000_000);
    expect(track.segment?.endTimeOffset).toBeDefined();
    // Batch answers carry the segment, not the streaming-only track id.
    expect(Number(track.trackId ?? 0)).toBe(0);

    const [bicycleResult] = await bicycle.promise();
    const found = (bicycleResult.annotationResults?.[0]?.objectAnnotations ?? []) as Annotation[];
    expect(found.map((a) => a.entity?.description)).toContain('bicycle');
    // Starting the detector threads dominates; a busy machine needs more than the default.
  }, 180_000);

  it('accepts the video inline as inputContent', async () => {
    const content = readFileSync(join(dir, 'cat.mp4')).toString('base64');
    const [operation] = await clients.video.annotateVideo({
      inputContent: content,
      features: [OBJECT_TRACKING],
    });
    const [response] = await operation.promise();
    const annotations = (response.annotationResults?.[0]?.objectAnnotations ?? []) as Annotation[];
    expect(annotations.map((a) => a.entity?.entityId)).toContain('/m/01yrx');
  }, 120_000);

  it('refuses features other than object tracking with UNIMPLEMENTED', async () => {
    const error = await failure(
      clients.video.annotateVideo({
        inputUri: `gs://${bucket}/cat.mp4`,
        features: [LABEL_DETECTION],
      }),
    );
    // Through the pass-through auth client a failed first call surfaces as the HTTP status.
    expect([12, 501]).toContain(error.code);
    expect(error.message).toContain('OBJECT_TRACKING');
  });

  it('fails the operation with NOT_FOUND for a missing object', async () => {
    const [operation] = await clients.video.annotateVideo({
      inputUri: `gs://${bucket}/nowhere.mp4`,
      features: [OBJECT_TRACKING],
    });
    await expect(operation.promise()).rejects.toMatchObject({
      code: 5,
      message: expect.stringContaining(`gs://${bucket}/nowhere.mp4`),
    });
  });

  it('fails the operation with INVALID_ARGUMENT for a file that is not a video', async () => {
    const [operation] = await clients.video.annotateVideo({
      inputUri: `gs://${bucket}/notes.mp4`,
      features: [OBJECT_TRACKING],
    });
    await expect(operation.promise()).rejects.toMatchObject({
      code: 3,
      message: expect.stringContaining(`gs://${bucket}/notes.mp4 is not a video`),
    });
    const [inline] = await clients.video.annotateVideo({
      inputContent: Buffer.from('not a video either').toString('base64'),
      features: [OBJECT_TRACKING],
    });
    await expect(inline.promise()).rejects.toMatchObject({ code: 3 });
  });

  it('rejects a request without an input', async () => {
    const error = await failure(clients.video.annotateVideo({ features: [OBJECT_TRACKING] }));
    expect([3, 400]).toContain(error.code);
    expect(error.message).toContain('inputUri');
  });
});

async function failure(promise: Promise<unknown>): Promise<{ code: unknown; message: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as { code?: unknown; message?: string };
    return { code: e.code, message: e.message ?? '' };
  }
  throw new Error('The call succeeded; a failure was expected.');
}

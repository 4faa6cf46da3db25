import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from '@jest/globals';

import { findTemplate } from '../../src/local/dataflow/templates.js';
import {
  classifyNotification,
  isVideoFileName,
} from '../../src/pipelines/video-analytics/notifications.js';
import { parseVideoAnalyticsParameters } from '../../src/pipelines/video-analytics/parameters.js';
import { isTransient } from '../../src/pipelines/video-analytics/pipeline.js';
import { ProgressLedger } from '../../src/pipelines/video-analytics/progress.js';
import type { ObjectAnnotationLike } from '../../src/pipelines/video-analytics/rows.js';
import {
  annotationsToRows,
  durationMicros,
  errorMessageFor,
  grpcCodeOf,
  isRelevant,
  placeClip,
  rowInsertId,
  secondsString,
} from '../../src/pipelines/video-analytics/rows.js';

/**
 * The pure rules of the video analytics template: its parameters, which notifications it keeps,
 * how annotations become rows (windows, split clips, insertIds), which rows it publishes, the
 * error message, and the progress file that makes a restart safe.
 */

const LAB_PARAMETERS = {
  inputNotificationSubscription: 'projects/p1/subscriptions/gcs-notification-subscription',
  outputTopic: 'projects/p1/topics/object-detection-topic',
  errorTopic: 'projects/p1/topics/error-topic',
  features: 'OBJECT_TRACKING',
  entities: 'window,person',
  confidenceThreshold: '0.9',
  windowInterval: '1',
  tableReference: 'p1:video_analytics.object_tracking_analysis',
};

const VIDEO = { bucket: 'p1_videos', name: 'street.mp4', generation: '1700000000000001' };
const STAMP = '2026-12-03T10:00:00.000Z';

/** A track as the client hands it over: protobuf durations, zero fields left out. */
function track(
  description: string,
  confidence: number,
  frames: [seconds: number, nanos: number, left?: number][],
): ObjectAnnotationLike {
  return {
    entity: { description },
    confidence,
    frames: frames.map(([seconds, nanos, left]) => ({
      normalizedBoundingBox: { ...(left ? { left } : {}), top: 0.1, right: 0.5, bottom: 0.9 },
      timeOffset: { ...(seconds ? { seconds: String(seconds) } : {}), ...(nanos ? { nanos } : {}) },
    })),
  };
}

describe('template parameters', () => {
  it('reads the lab launch and applies the documented defaults', () => {
    const options = parseVideoAnalyticsParameters(LAB_PARAMETERS);
    expect(options).toEqual({
      inputNotificationSubscription: {
        projectId: 'p1',
        subscriptionId: 'gcs-notification-subscription',
        name: 'projects/p1/subscriptions/gcs-notification-subscription',
      },
      outputTopic: {
        projectId: 'p1',
        topicId: 'object-detection-topic',
        name: 'projects/p1/topics/object-detection-topic',
      },
      errorTopic: {
        projectId: 'p1',
        topicId: 'error-topic',
        name: 'projects/p1/topics/error-topic',
      },
      features: 'OBJECT_TRACKING',
      entities: ['window', 'person'],
      confidenceThreshold: 0.9,
      windowIntervalSec: 1,
      table: { projectId: 'p1', datasetId: 'video_analytics', tableId: 'object_tracking_analysis' },
    });
    const required: Record<string, string> = { ...LAB_PARAMETERS, entities: ' person , cat,' };
    delete required.confidenceThreshold;
    delete required.windowInterval;
    const defaults = parseVideoAnalyticsParameters(required);
    expect(defaults.confidenceThreshold).toBe(0.5);
    expect(defaults.windowIntervalSec).toBe(1);
    expect(defaults.entities).toEqual(['person', 'cat']);
  });

  it.each([
    [
      'inputNotificationSubscription',
      undefined,
      /Missing required .*inputNotificationSubscription/,
    ],
    ['outputTopic', undefined, /Missing required .*outputTopic/],
    ['errorTopic', '', /Missing required .*errorTopic/],
    ['features', undefined, /Missing required .*features/],
    ['entities', undefined, /Missing required .*entities/],
    ['tableReference', undefined, /Missing required .*tableReference/],
    [
      'inputNotificationSubscription',
      'gcs-notification-subscription',
      /projects\/PROJECT\/subscriptions/,
    ],
    [
      'outputTopic',
      'projects/p1/subscriptions/x',
      /"outputTopic" must look like projects\/PROJECT\/topics/,
    ],
    ['errorTopic', 'error-topic', /"errorTopic" must look like/],
    ['features', 'LABEL_DETECTION', /must be OBJECT_TRACKING/],
    ['entities', ' , ', /comma-separated list/],
    ['confidenceThreshold', '1.5', /from 0 to 1/],
    ['confidenceThreshold', 'high', /from 0 to 1/],
    ['windowInterval', '0.5', /whole number of seconds/],
    ['windowInterval', '0', /whole number of seconds/],
    ['tableReference', 'video_analytics.object_tracking_analysis', /PROJECT:DATASET.TABLE/],
  ])('rejects %s=%p', (key, value, message) => {
    const parameters: Record<string, string> = { ...LAB_PARAMETERS };
    if (value === undefined) delete parameters[key];
    else parameters[key] = value;
    expect(() => parseVideoAnalyticsParameters(parameters)).toThrow(message);
  });

  it('rejects parameters the template does not know, naming those it does', () => {
    expect(() => parseVideoAnalyticsParameters({ ...LAB_PARAMETERS, entity: 'cat' })).toThrow(
      /Unrecognized template parameter\(s\): entity\. This template accepts inputNotification/,
    );
  });

  it('is the flex template the local Dataflow service runs for video_analytics.json', () => {
    const template = findTemplate('flex', 'gs://p1_dataflow_template_config/video_analytics.json');
    expect(template?.name).toBe('video_analytics');
    expect(template?.program).toMatch(/pipelines\/video-analytics\/main\.js$/);
    expect(findTemplate('flex', 'gs://lab-specs/v2/video_analytics.json')?.name).toBe(
      'video_analytics',
    );
    expect(findTemplate('classic', 'gs://lab-specs/video_analytics.json')).toBeUndefined();
    expect(findTemplate('flex', 'gs://lab-specs/video_analytics.json.bak')).toBeUndefined();
    expect(template?.validate(LAB_PARAMETERS)).toEqual({
      pubsub: [
        { subscription: LAB_PARAMETERS.inputNotificationSubscription },
        { topic: LAB_PARAMETERS.outputTopic },
        { topic: LAB_PARAMETERS.errorTopic },
      ],
      bigquery: [
        { projectId: 'p1', dataset: 'video_analytics', table: 'object_tracking_analysis' },
      ],
    });
    expect(() => template?.validate({ ...LAB_PARAMETERS, windowInterval: 'x' })).toThrow(
      /windowInterval/,
    );
  });
});

describe('notification filter', () => {
  const finalize = (objectId: string, extra: Record<string, string> = {}) => ({
    notificationConfig: 'projects/_/buckets/p1_videos/notificationConfigs/1',
    eventType: 'OBJECT_FINALIZE',
    payloadFormat: 'JSON_API_V1',
    bucketId: 'p1_videos',
    objectId,
    objectGeneration: '1700000000000001',
    eventTime: STAMP,
    ...extra,
  });

  it('keeps .mov, .mpeg4, .mp4 and .avi in any case, and nothing else', () => {
    for (const name of ['a.mp4', 'a.MP4', 'b.mov', 'c.Mov', 'd.mpeg4', 'e.AVI', 'dir/x~2.mp4']) {
      expect(isVideoFileName(name)).toBe(true);
    }
    for (const name of ['notes.txt', 'a.mp4.txt', 'a.mkv', 'a.mpeg', 'mp4', 'a.webm', 'a.mp4/']) {
      expect(isVideoFileName(name)).toBe(false);
    }
  });

  it('keeps finalize events of videos with their bucket, name and generation', () => {
    const decision = classifyNotification(finalize('clips/Cat.MOV'), '{}');
    expect(decision).toEqual({
      kind: 'video',
      video: {
        bucket: 'p1_videos',
        name: 'clips/Cat.MOV',
        generation: '1700000000000001',
        uri: 'gs://p1_videos/clips/Cat.MOV',
      },
    });
  });

  it('ignores other event types and other files, saying why', () => {
    for (const eventType of ['OBJECT_DELETE', 'OBJECT_METADATA_UPDATE', 'OBJECT_ARCHIVE']) {
      const decision = classifyNotification(finalize('a.mp4', { eventType }), '{}');
      expect(decision).toEqual({ kind: 'ignored', reason: expect.stringContaining(eventType) });
    }
    expect(classifyNotification(finalize('readme.txt'), '{}')).toEqual({
      kind: 'ignored',
      reason: 'readme.txt does not end in .mov, .mpeg4, .mp4 or .avi',
    });
    expect(classifyNotification({}, '{}').kind).toBe('ignored');
  });

  it('falls back to the JSON_API_V1 object resource for what the attributes lack', () => {
    const payload = JSON.stringify({ bucket: 'b2', name: 'v.avi', generation: '42' });
    const decision = classifyNotification({ eventType: 'OBJECT_FINALIZE' }, Buffer.from(payload));
    expect(decision).toEqual({
      kind: 'video',
      video: { bucket: 'b2', name: 'v.avi', generation: '42', uri: 'gs://b2/v.avi' },
    });
    const noGeneration = classifyNotification(finalize('v.mp4', { objectGeneration: '' }), 'x');
    expect(noGeneration.kind === 'video' && noGeneration.video.generation).toBe('0');
  });
});

describe('durations and split clips', () => {
  it('reads protobuf durations, JSON durations and zero-valued ones', () => {
    expect(durationMicros({ seconds: '3', nanos: 200_000_000 })).toBe(3_200_000);
    expect(durationMicros({ seconds: 7 })).toBe(7_000_000);
    expect(durationMicros({ nanos: 40_000_000 })).toBe(40_000);
    expect(durationMicros({ seconds: { toString: () => '12' } })).toBe(12_000_000);
    expect(durationMicros({})).toBe(0);
    expect(durationMicros(undefined)).toBe(0);
    expect(durationMicros('1.120s')).toBe(1_120_000);
    expect(durationMicros('bad')).toBeUndefined();
  });

  it('writes seconds as a decimal string', () => {
    expect(secondsString(0)).toBe('0.0');
    expect(secondsString(5_000_000)).toBe('5.0');
    expect(secondsString(1_200_000)).toBe('1.2');
    expect(secondsString(10_040_000)).toBe('10.04');
    expect(secondsString(123_456_789)).toBe('123.456789');
  });

  it('places part N of a 5-second split at 5N seconds of the unsplit file', () => {
    expect(placeClip({ bucket: 'b', name: 'street~3.mp4' })).toEqual({
      fileName: 'gs://b/street.mp4',
      part: 3,
      offsetMicros: 15_000_000,
    });
    expect(placeClip({ bucket: 'b', name: 'in/day~1~0.MOV' })).toEqual({
      fileName: 'gs://b/in/day~1.MOV',
      part: 0,
      offsetMicros: 0,
    });
    for (const name of ['street.mp4', 'street~x.mp4', '~2.mp4', 'a~2/b.mp4']) {
      expect(placeClip({ bucket: 'b', name })).toEqual({
        fileName: `gs://b/${name}`,
        part: 0,
        offsetMicros: 0,
      });
    }
  });
});

describe('annotations to rows', () => {
  const annotations = [
    track('person', 0.93, [
      [0, 0],
      [0, 200_000_000],
      [1, 0],
      [2, 400_000_000],
    ]),
    track('person', 0.61, [[0, 600_000_000, 0.25]]),
    track('cat', 0.4, [[1, 500_000_000]]),
  ];

  it('makes one row per entity and window, frames in time order with their track confidence', () => {
    const rows = annotationsToRows(annotations, VIDEO, {
      windowIntervalSec: 1,
      processingTimestamp: STAMP,
    });
    expect(rows.map((r) => [r.row.entity, r.window, r.row.frame_data.length])).toEqual([
      ['cat', 1, 1],
      ['person', 0, 3],
      ['person', 1, 1],
      ['person', 2, 1],
    ]);
    const first = rows[1]?.row;
    expect(first?.file_name).toBe('gs://p1_videos/street.mp4');
    expect(first?.frame_data).toEqual([
      {
        processing_timestamp: STAMP,
        timeOffset: '0.0',
        confidence: 0.93,
        left: 0,
        top: 0.1,
        right: 0.5,
        bottom: 0.9,
      },
      expect.objectContaining({ timeOffset: '0.2', confidence: 0.93 }),
      expect.objectContaining({ timeOffset: '0.6', confidence: 0.61, left: 0.25 }),
    ]);
  });

  it('widens windows with windowInterval', () => {
    const rows = annotationsToRows(annotations, VIDEO, {
      windowIntervalSec: 2,
      processingTimestamp: STAMP,
    });
    expect(rows.map((r) => [r.row.entity, r.window, r.row.frame_data.length])).toEqual([
      ['cat', 0, 1],
      ['person', 0, 4],
      ['person', 1, 1],
    ]);
  });

  it('moves a split clip to its place in the whole file', () => {
    const rows = annotationsToRows(
      [
        track('person', 0.9, [
          [0, 500_000_000],
          [4, 900_000_000],
        ]),
      ],
      { ...VIDEO, name: 'street~2.mp4' },
      { windowIntervalSec: 1, processingTimestamp: STAMP },
    );
    expect(rows.map((r) => [r.row.file_name, r.window, r.row.frame_data[0]?.timeOffset])).toEqual([
      ['gs://p1_videos/street.mp4', 10, '10.5'],
      ['gs://p1_videos/street.mp4', 14, '14.9'],
    ]);
  });

  it('derives the same insertIds from the same video, and new ones from anything else', () => {
    const options = { windowIntervalSec: 1, processingTimestamp: STAMP };
    const once = annotationsToRows(annotations, VIDEO, options).map((r) => r.insertId);
    const again = annotationsToRows(annotations, VIDEO, {
      ...options,
      processingTimestamp: '2027-01-01T00:00:00.000Z',
    }).map((r) => r.insertId);
    expect(again).toEqual(once);
    expect(new Set(once).size).toBe(once.length);
    const ids = [
      rowInsertId(VIDEO, 'person', 0),
      rowInsertId({ ...VIDEO, generation: '2' }, 'person', 0),
      rowInsertId(VIDEO, 'person', 1),
      rowInsertId(VIDEO, 'cat', 0),
      rowInsertId({ ...VIDEO, name: 'street~1.mp4' }, 'person', 0),
      rowInsertId({ ...VIDEO, bucket: 'other' }, 'person', 0),
    ];
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids[0]).toMatch(/^[0-9a-f]{40}$/);
  });

  it('names an entity the API left out NOT_FOUND and skips unreadable offsets', () => {
    const rows = annotationsToRows(
      [
        { confidence: 0.7, frames: [{ timeOffset: '0.5s' }, { timeOffset: 'soon' }] },
        { entity: { description: 'dog' } },
      ],
      VIDEO,
      { windowIntervalSec: 1, processingTimestamp: STAMP },
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.row).toEqual({
      file_name: 'gs://p1_videos/street.mp4',
      entity: 'NOT_FOUND',
      frame_data: [
        {
          processing_timestamp: STAMP,
          timeOffset: '0.5',
          confidence: 0.7,
          left: 0,
          top: 0,
          right: 0,
          bottom: 0,
        },
      ],
    });
  });
});

describe('what is published', () => {
  const row = (entity: string, confidences: number[]) => ({
    file_name: 'gs://b/a.mp4',
    entity,
    frame_data: confidences.map((confidence, i) => ({
      processing_timestamp: STAMP,
      timeOffset: `${i}.0`,
      confidence,
      left: 0,
      top: 0,
      right: 1,
      bottom: 1,
    })),
  });

  it('publishes listed entities (exact match) with a frame at or above the threshold', () => {
    const entities = ['window', 'person'];
    expect(isRelevant(row('person', [0.3, 0.9]), entities, 0.9)).toBe(true);
    expect(isRelevant(row('person', [0.89]), entities, 0.9)).toBe(false);
    expect(isRelevant(row('Person', [0.99]), entities, 0.9)).toBe(false);
    expect(isRelevant(row('persons', [0.99]), entities, 0.9)).toBe(false);
    expect(isRelevant(row('cat', [0.99]), entities, 0.9)).toBe(false);
    expect(isRelevant(row('window', []), entities, 0)).toBe(false);
    expect(isRelevant(row('window', [0]), entities, 0)).toBe(true);
  });

  it('shapes the error message as the template does', () => {
    const now = new Date(STAMP);
    const notFound = Object.assign(new Error('No such object: b/gone.mp4'), { code: 5 });
    expect(errorMessageFor('gs://b/gone.mp4', notFound, now)).toEqual({
      file_name: 'gs://b/gone.mp4',
      transaction_timestamp: STAMP,
      error_code: 5,
      error_message: 'No such object: b/gone.mp4',
    });
    expect(errorMessageFor('gs://b/x.mp4', { code: 'ECONNRESET', message: 'reset' }, now)).toEqual(
      expect.objectContaining({ error_code: 2, error_message: 'reset' }),
    );
    expect(errorMessageFor('gs://b/x.mp4', {}, now).error_message).toMatch(/without a message/);
    expect(errorMessageFor('gs://b/x.mp4', { code: 404, message: 'gone' }, now).error_code).toBe(5);
    expect([400, 503, 504, 418, 3.5, -1, 17].map(grpcCodeOf)).toEqual([3, 14, 4, 2, 2, 2, 2]);
  });

  it('tries again only failures that say nothing about the video', () => {
    for (const code of [14, 4, 8, 10, 503, 429, 'ECONNREFUSED', 'ECONNRESET']) {
      expect(isTransient({ code })).toBe(true);
    }
    for (const code of [3, 5, 7, 13, 400, 404, undefined, 'not a code']) {
      expect(isTransient({ code })).toBe(false);
    }
    expect(isTransient(null)).toBe(false);
  });
});

describe('progress file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cymbal-video-progress-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('remembers finished stages across a restart and ignores a line cut short', () => {
    const file = join(dir, 'video-progress.jsonl');
    const first = new ProgressLedger(file);
    const a = ProgressLedger.keyOf(VIDEO);
    const b = ProgressLedger.keyOf({ ...VIDEO, generation: '2' });
    first.mark(a, 'written');
    first.mark(b, 'written');
    first.mark(a, 'done');
    appendFileSync(file, '{"key":"p1_videos/cut.mp4#1","sta');
    const second = new ProgressLedger(file);
    expect(second.stageOf(a)).toBe('done');
    expect(second.stageOf(b)).toBe('written');
    expect(second.stageOf('p1_videos/cut.mp4#1')).toBeUndefined();
    expect(second.size).toBe(2);
    expect(readFileSync(file, 'utf8').split('\n')[0]).toBe(
      JSON.stringify({ key: 'p1_videos/street.mp4#1700000000000001', stage: 'written' }),
    );
  });

  it('keeps progress in memory when there is no job directory', () => {
    const ledger = new ProgressLedger();
    ledger.mark('k', 'done');
    expect(ledger.stageOf('k')).toBe('done');
  });
});

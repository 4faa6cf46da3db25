import { createHash } from 'node:crypto';

import type { VideoObject } from './notifications.js';

/**
 * The pure part of the template: Video Intelligence object-tracking annotations become rows of
 * the `object_tracking_analysis` table, one per (file, entity, window of video time), and the
 * messages the template publishes (relevant rows, API errors) take their exact shape here.
 */

/** One element of the table's `frame_data` REPEATED RECORD. */
export interface FrameData {
  processing_timestamp: string;
  /** Seconds from the start of the whole video, as a decimal string such as `5.2`. */
  timeOffset: string;
  confidence: number;
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** A row of `object_tracking_analysis`, also the JSON published to the output topic. */
export interface AnnotationRow {
  [column: string]: unknown;
  file_name: string;
  entity: string;
  frame_data: FrameData[];
}

export interface KeyedRow {
  /** Derived from object, generation, entity and window: the same video gives the same ids. */
  insertId: string;
  /** Index of the row's window: its frames lie in [window, window + 1) × windowInterval. */
  window: number;
  row: AnnotationRow;
}

/** The body of a message on the error topic. */
export interface ErrorMessage {
  file_name: string;
  transaction_timestamp: string;
  /** The gRPC status code of the failure (3 INVALID_ARGUMENT, 5 NOT_FOUND, 13 INTERNAL...). */
  error_code: number;
  error_message: string;
}

/** Attributes of the messages the template publishes. */
export const OUTPUT_ATTRIBUTES = { entity: 'object_tracking' } as const;
export const ERROR_ATTRIBUTES = { error_type: 'api_response' } as const;

/** Length of each part when a long video is uploaded as `name~N.mp4` clips. */
export const SPLIT_CLIP_SECONDS = 5;

/**
 * The annotation fields this module reads, as the official client hands them over: a duration
 * is `{seconds, nanos}` (seconds a number, a string or a Long) or its JSON text `"1.2s"`, and
 * proto3 leaves out fields that are zero.
 */
export interface DurationLike {
  seconds?: number | string | { toString(): string } | null;
  nanos?: number | null;
}

export interface ObjectAnnotationLike {
  entity?: { description?: string | null } | null;
  confidence?: number | null;
  frames?:
    | {
        normalizedBoundingBox?: {
          left?: number | null;
          top?: number | null;
          right?: number | null;
          bottom?: number | null;
        } | null;
        timeOffset?: DurationLike | string | null;
      }[]
    | null;
}

/** Where a clip belongs: the file its rows name, and how far into that file it starts. */
export interface ClipPlacement {
  /** `gs://BUCKET/name.mp4` for `name~N.mp4` and for `name.mp4` alike. */
  fileName: string;
  /** 0 for a whole video; N for part N of a split. */
  part: number;
  offsetMicros: number;
}

const SPLIT_PART = /^(?<base>.+)~(?<part>\d+)(?<ext>\.[^./~]+)$/;

/** `clip~2.mp4` is part 2 of a 5-second split of `clip.mp4`: its offsets start at 10 s. */
export function placeClip(video: Pick<VideoObject, 'bucket' | 'name'>): ClipPlacement {
  const match = SPLIT_PART.exec(video.name);
  if (!match?.groups) {
    return { fileName: `gs://${video.bucket}/${video.name}`, part: 0, offsetMicros: 0 };
  }
  const { base = '', part = '0', ext = '' } = match.groups;
  const n = Number(part);
  return {
    fileName: `gs://${video.bucket}/${base}${ext}`,
    part: n,
    offsetMicros: n * SPLIT_CLIP_SECONDS * 1_000_000,
  };
}

/** A duration in whole microseconds; `undefined` when it cannot be read. */
export function durationMicros(
  value: DurationLike | string | null | undefined,
): number | undefined {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'string') {
    const match = /^(-?\d+(?:\.\d+)?)s$/.exec(value.trim());
    return match ? Math.round(Number(match[1]) * 1_000_000) : undefined;
  }
  const seconds = Number(value.seconds?.toString() ?? 0);
  const nanos = Number(value.nanos ?? 0);
  if (!Number.isFinite(seconds) || !Number.isFinite(nanos)) return undefined;
  return seconds * 1_000_000 + Math.round(nanos / 1000);
}

/** Seconds as a decimal string: `0.0`, `1.2`, `10.04`, never an exponent. */
export function secondsString(micros: number): string {
  const whole = Math.trunc(micros / 1_000_000);
  const fraction = Math.abs(micros % 1_000_000);
  const sign = micros < 0 && whole === 0 ? '-' : '';
  const digits = String(fraction).padStart(6, '0').replace(/0+$/, '');
  return `${sign}${whole}.${digits || '0'}`;
}

export interface RowOptions {
  windowIntervalSec: number;
  /** Written into every frame as `processing_timestamp`. */
  processingTimestamp: string;
}

/**
 * Groups the frames of every annotation by entity and window of video time (offsets already
 * moved by the clip's place in a split), giving one row per (file, entity, window). Each frame
 * carries its track's confidence, the only confidence the API reports. Rows come out ordered by
 * entity, then window; frames by time.
 */
export function annotationsToRows(
  annotations: ObjectAnnotationLike[],
  video: Pick<VideoObject, 'bucket' | 'name' | 'generation'>,
  options: RowOptions,
): KeyedRow[] {
  const clip = placeClip(video);
  const windowMicros = options.windowIntervalSec * 1_000_000;
  const groups = new Map<string, { entity: string; window: number; frames: TimedFrame[] }>();
  for (const annotation of annotations) {
    const entity = annotation.entity?.description || 'NOT_FOUND';
    const confidence = annotation.confidence ?? 0;
    for (const frame of annotation.frames ?? []) {
      const offset = durationMicros(frame.timeOffset);
      if (offset === undefined) continue;
      const micros = offset + clip.offsetMicros;
      const window = Math.floor(micros / windowMicros);
      const key = `${entity}\u0000${window}`;
      let group = groups.get(key);
      if (!group) {
        group = { entity, window, frames: [] };
        groups.set(key, group);
      }
      const box = frame.normalizedBoundingBox ?? {};
      group.frames.push({
        micros,
        data: {
          processing_timestamp: options.processingTimestamp,
          timeOffset: secondsString(micros),
          confidence,
          left: box.left ?? 0,
          top: box.top ?? 0,
          right: box.right ?? 0,
          bottom: box.bottom ?? 0,
        },
      });
    }
  }
  return [...groups.values()]
    .sort((a, b) => (a.entity < b.entity ? -1 : a.entity > b.entity ? 1 : a.window - b.window))
    .map((group) => ({
      insertId: rowInsertId(video, group.entity, group.window),
      window: group.window,
      row: {
        file_name: clip.fileName,
        entity: group.entity,
        frame_data: group.frames.sort((a, b) => a.micros - b.micros).map((f) => f.data),
      },
    }));
}

interface TimedFrame {
  micros: number;
  data: FrameData;
}

/**
 * The insertId of a row. It names the uploaded object (a split's part included) and its
 * generation, so a redelivered notification or a restarted job produces the same ids, while a
 * new upload of the same name produces new ones.
 */
export function rowInsertId(
  video: Pick<VideoObject, 'bucket' | 'name' | 'generation'>,
  entity: string,
  window: number,
): string {
  const key = [video.bucket, video.name, video.generation, entity, String(window)].join('\u0000');
  return createHash('sha256').update(key).digest('hex').slice(0, 40);
}

/** A row goes to the output topic when its entity is listed exactly and a frame is confident. */
export function isRelevant(
  row: AnnotationRow,
  entities: readonly string[],
  threshold: number,
): boolean {
  return entities.includes(row.entity) && row.frame_data.some((f) => f.confidence >= threshold);
}

/** The error-topic message for a video the API could not annotate. */
export function errorMessageFor(
  fileName: string,
  error: { code?: unknown; message?: unknown } | Error,
  now: Date,
): ErrorMessage {
  const code = (error as { code?: unknown }).code;
  return {
    file_name: fileName,
    transaction_timestamp: now.toISOString(),
    error_code: grpcCodeOf(code),
    error_message:
      typeof error.message === 'string' && error.message
        ? error.message
        : 'The Video Intelligence API failed without a message.',
  };
}

const UNKNOWN_CODE = 2;

/** gRPC codes for the HTTP statuses Google's REST APIs answer with. */
const FROM_HTTP: Readonly<Record<number, number>> = {
  400: 3,
  401: 16,
  403: 7,
  404: 5,
  409: 6,
  412: 9,
  429: 8,
  499: 1,
  500: 13,
  501: 12,
  503: 14,
  504: 4,
};

/**
 * The gRPC status code of a client error. The REST transport usually reports gRPC's code, but
 * some failures carry the HTTP status instead (400 for INVALID_ARGUMENT), and network errors a
 * string such as ECONNREFUSED, which counts as UNKNOWN.
 */
export function grpcCodeOf(code: unknown): number {
  if (typeof code !== 'number' || !Number.isInteger(code)) return UNKNOWN_CODE;
  if (code >= 0 && code <= 16) return code;
  return FROM_HTTP[code] ?? UNKNOWN_CODE;
}

import type { Box, Detection } from './box.js';
import type { DecodeOptions, VideoInfo } from './decode.js';
import { decodeFrames, DEFAULT_SAMPLE_FPS, probeVideo } from './decode.js';
import { entityFor } from './entities.js';
import type { DetectorPool } from './pool.js';
import type { TrackerOptions, TrackResult } from './track.js';
import { Tracker } from './track.js';

/**
 * Video in, object tracks out, in the shape of Video Intelligence's OBJECT_TRACKING answer:
 * decode sampled frames, detect objects on the shared worker pool, track them in order.
 */

/** `ObjectTrackingAnnotation` as the v1 REST API writes it. */
export interface ObjectTrackingAnnotation {
  entity: { entityId: string; description: string; languageCode: string };
  confidence: number;
  frames: { normalizedBoundingBox: Box; timeOffset: string }[];
  segment: { startTimeOffset: string; endTimeOffset: string };
  /**
   * The API sets this only in streaming mode (it is a oneof with `segment`); the local service
   * leaves it out like Google does, while `cymbal-lab annotate --json` keeps it for reference.
   */
  trackId?: string;
}

export interface AnnotateOptions extends Omit<DecodeOptions, 'signal'> {
  pool: DetectorPool;
  /** Name under which the pool schedules this video's frames fairly against other jobs. */
  job?: string;
  tracker?: Partial<TrackerOptions>;
  /** Called with 0..1 as frames are tracked. */
  onProgress?: (fraction: number) => void;
  signal?: AbortSignal;
  /** Probe result, when the caller already has it. */
  info?: VideoInfo;
}

export interface AnnotateResult {
  info: VideoInfo;
  sampleFps: number;
  /** Frames sampled and detected. */
  frameCount: number;
  /** The detector's output, per sampled frame (kept for benchmarks and previews). */
  detections: Detection[][];
  tracks: TrackResult[];
  annotations: ObjectTrackingAnnotation[];
  /** Wall-clock milliseconds from the first frame decoded to the last frame tracked. */
  elapsedMs: number;
}

let jobCounter = 0;

export async function annotateVideo(
  file: string,
  options: AnnotateOptions,
): Promise<AnnotateResult> {
  const info = options.info ?? (await probeVideo(file));
  const sampleFps = options.sampleFps ?? DEFAULT_SAMPLE_FPS;
  const job = options.job ?? `annotate-${++jobCounter}`;
  const expected = Math.max(1, Math.ceil(info.durationSec * sampleFps));
  // Enough frames in flight to keep every worker busy, few enough to bound memory.
  const maxInFlight = options.pool.size * 3;
  const tracker = new Tracker(options.tracker);
  const detections: Detection[][] = [];
  const pending: { index: number; timeSec: number; result: Promise<Detection[]> }[] = [];
  const started = performance.now();

  const consume = async (): Promise<void> => {
    const next = pending.shift();
    if (!next) return;
    const found = await next.result;
    detections.push(found);
    tracker.update(next.index, next.timeSec, found);
    options.onProgress?.(Math.min(1, detections.length / expected));
  };

  try {
    const decodeOptions: DecodeOptions = { sampleFps };
    if (options.width !== undefined) decodeOptions.width = options.width;
    if (options.signal) decodeOptions.signal = options.signal;
    for await (const frame of decodeFrames(file, info, decodeOptions)) {
      const result = options.pool.detect(job, frame.width, frame.height, frame.rgb);
      // Failures surface when the frame's turn comes; until then nobody awaits the promise.
      result.catch(() => undefined);
      pending.push({ index: frame.index, timeSec: frame.timeSec, result });
      while (pending.length >= maxInFlight) await consume();
    }
    while (pending.length > 0) await consume();
  } catch (error) {
    options.pool.cancel(job);
    throw error;
  }
  options.onProgress?.(1);

  const tracks = tracker.results();
  const frameSec = 1 / sampleFps;
  return {
    info,
    sampleFps,
    frameCount: detections.length,
    detections,
    tracks,
    annotations: toAnnotations(tracks, frameSec, info.durationSec),
    elapsedMs: performance.now() - started,
  };
}

/** Tracks in the API's shape, ordered by when they first appear. */
export function toAnnotations(
  tracks: TrackResult[],
  frameSec: number,
  durationSec = 0,
): ObjectTrackingAnnotation[] {
  return [...tracks]
    .sort((a, b) => (a.observations[0]?.timeSec ?? 0) - (b.observations[0]?.timeSec ?? 0))
    .map((track) => {
      const entity = entityFor(track.classId);
      const first = track.observations[0]?.timeSec ?? 0;
      const last = track.observations.at(-1)?.timeSec ?? first;
      return {
        entity: {
          entityId: entity.entityId,
          description: entity.description,
          languageCode: 'en-US',
        },
        confidence: round(track.score, 6),
        frames: track.observations.map((o) => ({
          normalizedBoundingBox: {
            left: round(o.box.left, 6),
            top: round(o.box.top, 6),
            right: round(o.box.right, 6),
            bottom: round(o.box.bottom, 6),
          },
          timeOffset: durationString(o.timeSec),
        })),
        // The segment ends where the last observed frame's sampling interval ends.
        segment: {
          startTimeOffset: durationString(first),
          endTimeOffset: durationString(
            durationSec > 0 ? Math.min(durationSec, last + frameSec) : last + frameSec,
          ),
        },
        trackId: String(track.id),
      };
    });
}

/** A `google.protobuf.Duration` as JSON: `"1.200s"`, `"3s"`. */
export function durationString(seconds: number): string {
  const millis = Math.round(seconds * 1000);
  if (millis % 1000 === 0) return `${millis / 1000}s`;
  return `${(millis / 1000).toFixed(3)}s`;
}

function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

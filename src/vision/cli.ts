import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';

import { createClients } from '../cloud/clients.js';
import { targetFromEnvironment } from '../cloud/target.js';
import { LabError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AnnotateResult } from './annotate.js';
import { annotateVideo, durationString } from './annotate.js';
import { VideoError } from './decode.js';
import { entityFor } from './entities.js';
import { MODEL_NAME } from './model.js';
import { DetectorPool } from './pool.js';
import { previewKind, writePreview } from './preview.js';

/**
 * `cymbal-lab annotate <file|gs://...>`: object tracking on one video, on this machine, with
 * the same detector and tracker as the local Video Intelligence API. A `gs://` video is fetched
 * with the Storage client of the current target (the local cloud when `cymbal-lab local env`
 * is in effect, Google otherwise).
 */

export interface AnnotateCliOptions {
  /** Writes the result as the API's `annotationResults[0]` (with track ids) to this file. */
  json?: string;
  /** Writes a contact sheet (.png) or a video (.mp4) with the boxes drawn. */
  preview?: string;
  /** The detector; `coco-ssd` (the default) is the one that ships. */
  model?: string;
}

const MODELS = ['coco-ssd', MODEL_NAME];

export async function runAnnotate(
  target: string,
  options: AnnotateCliOptions,
  log: Logger,
): Promise<void> {
  if (options.model && !MODELS.includes(options.model)) {
    throw new LabError(`Unknown detection model "${options.model}".`, {
      hint: 'The model that ships with cymbal-lab is coco-ssd (COCO-SSD, lite MobileNet v2).',
    });
  }
  if (options.preview) previewKind(options.preview);
  const work = mkdtempSync(join(tmpdir(), 'cymbal-annotate-'));
  const pool = new DetectorPool();
  try {
    const file = target.startsWith('gs://') ? await download(target, work, log) : target;
    log.info('Annotating %s with %d detector threads...', target, pool.size);
    let shown = -10;
    const result = await annotateVideo(file, {
      pool,
      onProgress: (fraction) => {
        const percent = Math.floor(fraction * 100);
        if (percent >= shown + 10) {
          shown = percent - (percent % 10);
          log.debug('%d%% of the frames tracked', percent);
        }
      },
    }).catch((error: unknown) => {
      if (error instanceof VideoError && file !== target) {
        throw new LabError(error.message.split(file).join(target), {
          hint: error.hint ?? '',
          cause: error,
        });
      }
      throw error;
    });
    summarize(target, result, log);
    if (options.json) {
      writeFileSync(options.json, `${JSON.stringify(asResult(target, result), null, 2)}\n`);
      log.info('Wrote the annotations to %s', options.json);
    }
    if (options.preview) {
      await writePreview(file, result.info, result.sampleFps, result.tracks, options.preview);
      log.info('Wrote the preview to %s', options.preview);
    }
  } finally {
    await pool.close();
    rmSync(work, { recursive: true, force: true });
  }
}

async function download(uri: string, dir: string, log: Logger): Promise<string> {
  const match = /^gs:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match?.[1] || !match[2]) {
    throw new LabError(`"${uri}" is not a Cloud Storage URI.`, { hint: 'Use gs://BUCKET/OBJECT.' });
  }
  const clients = createClients(targetFromEnvironment());
  const file = join(dir, basename(match[2]));
  try {
    log.debug('Downloading %s', uri);
    const stream = clients.storage.bucket(match[1]).file(match[2]).createReadStream();
    await pipeline(stream, createWriteStream(file));
    return file;
  } catch (error) {
    throw new LabError(`Could not read ${uri}: ${(error as Error).message}`, {
      hint: 'Check the bucket and object name, and that `cymbal-lab local env` or gcloud credentials are in effect.',
      cause: error,
    });
  } finally {
    await clients.close();
  }
}

function summarize(target: string, result: AnnotateResult, log: Logger): void {
  const { info, tracks } = result;
  log.info(
    '%s: %s, %dx%d, %d frames sampled at %d/s in %s s (real-time factor %s)',
    target,
    info.still ? 'still picture' : `${info.durationSec.toFixed(1)} s`,
    info.width,
    info.height,
    result.frameCount,
    result.sampleFps,
    (result.elapsedMs / 1000).toFixed(1),
    info.durationSec > 0 ? (result.elapsedMs / 1000 / info.durationSec).toFixed(2) : 'n/a',
  );
  if (tracks.length === 0) {
    log.info('No objects were tracked.');
    return;
  }
  const byEntity = new Map<string, number>();
  for (const track of tracks) {
    const name = entityFor(track.classId).description;
    byEntity.set(name, (byEntity.get(name) ?? 0) + 1);
  }
  log.info(
    'Entities: %s',
    [...byEntity]
      .map(([name, count]) => `${name} (${count} track${count > 1 ? 's' : ''})`)
      .join(', '),
  );
  for (const track of tracks) {
    const entity = entityFor(track.classId);
    const first = track.observations[0]?.timeSec ?? 0;
    const last = track.observations.at(-1)?.timeSec ?? first;
    log.info(
      '  track %d  %s %s  confidence %s  %s to %s  %d frames',
      track.id,
      entity.description.padEnd(14),
      entity.entityId.padEnd(11),
      track.score.toFixed(2),
      durationString(first),
      durationString(last),
      track.observations.length,
    );
  }
}

function asResult(target: string, result: AnnotateResult): object {
  return {
    inputUri: target.startsWith('gs://') ? target.replace(/^gs:\//, '') : target,
    segment: { startTimeOffset: '0s', endTimeOffset: durationString(result.info.durationSec) },
    objectAnnotations: result.annotations,
  };
}

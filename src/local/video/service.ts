import { randomUUID } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

import { errorMessage, LabError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ObjectTrackingAnnotation } from '../../vision/annotate.js';
import { annotateVideo, durationString } from '../../vision/annotate.js';
import { probeVideo, VideoError } from '../../vision/decode.js';
import { DetectorPool } from '../../vision/pool.js';
import type { Route } from '../http.js';
import { ApiError } from '../http.js';
import type { AnyJson, OperationHandle } from '../operations.js';
import { operationStore, packAny } from '../operations.js';
import type { LocalCloud, LocalService, ServiceStatus } from '../service.js';
import type { StorageService } from '../storage/service.js';
import { parseGsUri, STORAGE_SERVICE } from '../storage/service.js';
import type { AnnotateRequest } from './request.js';
import { OBJECT_TRACKING, parseAnnotateRequest } from './request.js';

/**
 * The local Video Intelligence v1 API: `videos:annotate` with OBJECT_TRACKING, answered as a
 * long-running operation in the shared store and polled through its routes. Videos come from
 * the local Cloud Storage (read in process) or from the request itself. Every job shares one
 * pool of detector threads, which takes frames from running jobs in turn; at most
 * `MAX_RUNNING_JOBS` decode at once and later calls wait their turn at 0%.
 */

export const VIDEO_SERVICE = 'video';

const PROGRESS = 'google.cloud.videointelligence.v1.AnnotateVideoProgress';
const RESPONSE = 'google.cloud.videointelligence.v1.AnnotateVideoResponse';
const MAX_RUNNING_JOBS = 4;
/** Videos sent inline may be large; Google allows about this much in one request. */
const MAX_REQUEST_BYTES = 512 * 1024 * 1024;
/** Google answers from one of a few regions; this is the one it picks by default. */
const DEFAULT_LOCATION = 'us-east1';

export interface VideoServiceOptions {
  /** Detector threads; one per core unless set. */
  workers?: number;
  modelDir?: string;
}

interface Job {
  request: AnnotateRequest;
  handle: OperationHandle;
  abort: AbortController;
  inputUri: string;
  started: string;
}

export class VideoService implements LocalService {
  readonly name = VIDEO_SERVICE;
  readonly routes: Route[];
  private readonly log: Logger;
  private readonly workDir: string;
  private pool: DetectorPool | undefined;
  private readonly waiting: Job[] = [];
  private running = 0;
  private completed = 0;
  private failed = 0;

  constructor(
    private readonly cloud: LocalCloud,
    private readonly options: VideoServiceOptions = {},
  ) {
    this.log = cloud.log.child(VIDEO_SERVICE);
    this.workDir = join(cloud.dataDir, VIDEO_SERVICE, 'work');
    this.routes = [
      {
        method: 'POST',
        path: /^\/v1\/videos:annotate$/,
        maxBodyBytes: MAX_REQUEST_BYTES,
        handler: (request) => Promise.resolve({ json: this.annotate(request.json()) }),
      },
    ];
  }

  start(): Promise<void> {
    // Files left by a run that stopped part way are of no further use.
    rmSync(this.workDir, { recursive: true, force: true });
    mkdirSync(this.workDir, { recursive: true });
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    for (const job of this.waiting.splice(0)) {
      job.handle.fail(new ApiError('UNAVAILABLE', 'The local cloud stopped before the job ran.'));
    }
    await this.pool?.close();
    this.pool = undefined;
  }

  status(): Promise<ServiceStatus> {
    return Promise.resolve({
      name: VIDEO_SERVICE,
      endpoint: `${this.cloud.endpoint}/v1/videos:annotate`,
      state: 'running',
      detail:
        `${this.running} running, ${this.waiting.length} waiting, ${this.completed} done, ` +
        `${this.failed} failed; ${this.pool ? `${this.pool.size} detector threads` : 'model not loaded yet'}`,
      resources: [],
    });
  }

  /** Checks the request, starts (or queues) the job, and answers with its operation. */
  annotate(body: Record<string, unknown>): object {
    const request = parseAnnotateRequest(body);
    const location = request.locationId ?? DEFAULT_LOCATION;
    const inputUri = request.input.kind === 'uri' ? resultUri(request.input.uri) : '';
    const started = new Date().toISOString();
    const abort = new AbortController();
    const handle = operationStore(this.cloud).begin({
      parent: `projects/${this.cloud.projectId}/locations/${location}`,
      metadata: progress(inputUri, 0, started),
      onCancel: () => abort.abort(),
    });
    this.waiting.push({ request, handle, abort, inputUri, started });
    this.next();
    return operationStore(this.cloud).get(handle.name);
  }

  private next(): void {
    while (this.running < MAX_RUNNING_JOBS && this.waiting.length > 0) {
      const job = this.waiting.shift() as Job;
      this.running += 1;
      this.run(job)
        .then(
          (response) => {
            this.completed += 1;
            job.handle.succeed(response, progress(job.inputUri, 100, job.started));
          },
          (error: unknown) => {
            this.failed += 1;
            const failure = asApiError(error, job);
            this.log.debug(
              'annotation of %s failed: %s',
              job.inputUri || 'inline video',
              failure.message,
            );
            job.handle.fail(failure, progress(job.inputUri, 0, job.started));
          },
        )
        .finally(() => {
          this.running -= 1;
          this.next();
        });
    }
  }

  private async run(job: Job): Promise<AnyJson> {
    job.abort.signal.throwIfAborted();
    const file = join(this.workDir, randomUUID());
    try {
      await this.fetchInput(job.request, file);
      const info = await probeVideo(file).catch((error: unknown) => {
        throw renamed(error, file, job);
      });
      const pool = await this.detectorPool();
      let reported = -1;
      const annotating = annotateVideo(file, {
        pool,
        info,
        job: job.handle.name,
        signal: job.abort.signal,
        onProgress: (fraction) => {
          const percent = Math.min(99, Math.floor(fraction * 100));
          if (percent === reported) return;
          reported = percent;
          job.handle.setMetadata(progress(job.inputUri, percent, job.started));
        },
      });
      const result = await annotating.catch((error: unknown) => {
        throw renamed(error, file, job);
      });
      const response = packAny(RESPONSE, {
        annotationResults: [
          {
            inputUri: job.inputUri,
            segment: { startTimeOffset: '0s', endTimeOffset: durationString(info.durationSec) },
            objectAnnotations: result.annotations.map(asBatchAnnotation),
          },
        ],
      });
      if (job.request.outputUri) await this.writeOutput(job.request.outputUri, response);
      return response;
    } finally {
      await rm(file, { force: true });
    }
  }

  private async fetchInput(request: AnnotateRequest, file: string): Promise<void> {
    if (request.input.kind === 'content') {
      await writeFile(file, request.input.content);
      return;
    }
    const uri = request.input.uri;
    const { bucket, name } = parseGsUri(uri);
    const storage = this.cloud.service<StorageService>(STORAGE_SERVICE);
    const opened = await storage.openObject(bucket, name).catch((error: unknown) => {
      if (error instanceof ApiError && error.status === 'NOT_FOUND') {
        throw new ApiError(
          'NOT_FOUND',
          `The input video ${uri} was not found (${error.message}). ` +
            'Check the bucket and object name, or upload the video first.',
        );
      }
      throw error;
    });
    await pipeline(opened.stream, createWriteStream(file));
  }

  private async writeOutput(outputUri: string, response: AnyJson): Promise<void> {
    const { bucket, name } = parseGsUri(outputUri);
    const body: Record<string, unknown> = { ...response };
    delete body['@type'];
    await this.cloud
      .service<StorageService>(STORAGE_SERVICE)
      .writeObject(bucket, name, JSON.stringify(body), { contentType: 'application/json' });
  }

  /** The shared pool, started on first use; a pool that failed to start is replaced. */
  private async detectorPool(): Promise<DetectorPool> {
    if (this.pool?.broken) {
      this.log.warn('the detector threads stopped; starting new ones');
      this.pool = undefined;
    }
    if (!this.pool) {
      const options = {
        ...(this.options.workers ? { size: this.options.workers } : {}),
        ...(this.options.modelDir ? { modelDir: this.options.modelDir } : {}),
      };
      this.pool = new DetectorPool(options);
      this.log.debug('starting %d detector threads', this.pool.size);
    }
    const pool = this.pool;
    try {
      await pool.start();
      return pool;
    } catch (error) {
      if (this.pool === pool) this.pool = undefined;
      throw error;
    }
  }
}

/** Google reports a `gs://bucket/object` input as `/bucket/object`. */
function resultUri(uri: string): string {
  return uri.replace(/^gs:\//, '');
}

function progress(inputUri: string, percent: number, started: string): AnyJson {
  return packAny(PROGRESS, {
    annotationProgress: [
      {
        inputUri,
        progressPercent: percent,
        startTime: started,
        updateTime: new Date().toISOString(),
        feature: OBJECT_TRACKING,
      },
    ],
  });
}

/** In batch mode the API sets `segment` and leaves `trackId` (streaming only) unset. */
function asBatchAnnotation(annotation: ObjectTrackingAnnotation): object {
  const batch: Partial<ObjectTrackingAnnotation> = { ...annotation };
  delete batch.trackId;
  return batch;
}

/** What the caller calls the video, for messages. */
function inputName(job: Job): string {
  return job.request.input.kind === 'uri'
    ? job.request.input.uri
    : 'the inline video (inputContent)';
}

/** A decoding error about the work file, reworded to name the caller's video. */
function renamed(error: unknown, file: string, job: Job): unknown {
  if (!(error instanceof VideoError)) return error;
  const message = error.message.split(file).join(inputName(job));
  if (error.kind === 'not-video' || error.kind === 'corrupt') {
    return new ApiError(
      'INVALID_ARGUMENT',
      `${message} Video Intelligence needs a video file such as MP4, AVI, MOV or WebM.`,
    );
  }
  return new VideoError(error.kind, message, { hint: error.hint ?? '', cause: error });
}

function asApiError(error: unknown, job: Job): ApiError {
  if (job.abort.signal.aborted) return new ApiError('CANCELLED', 'The operation was cancelled.');
  if (error instanceof ApiError) return error;
  const what = inputName(job);
  if (error instanceof LabError) {
    return new ApiError('INTERNAL', `${error.message}${error.hint ? ` ${error.hint}` : ''}`);
  }
  return new ApiError('INTERNAL', `Annotating ${what} failed: ${errorMessage(error)}`);
}

export const videoServiceFactory = (cloud: LocalCloud): LocalService => new VideoService(cloud);

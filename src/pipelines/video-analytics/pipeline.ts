import type { BigQuery, Table } from '@google-cloud/bigquery';
import type { v1 } from '@google-cloud/pubsub';

import { errorMessage, GrpcCode, isNotFound } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { PipelineMetrics } from '../../local/dataflow/protocol.js';
import { JobLifecycle, RateWindow, jobMetrics } from '../pubsub-to-bigquery/metrics.js';
import { formatTableSpec } from '../pubsub-to-bigquery/parameters.js';
import { PipelineFailure } from '../pubsub-to-bigquery/pipeline.js';
import { insertErrorMessage } from '../pubsub-to-bigquery/rows.js';
import { BigQuerySink } from '../pubsub-to-bigquery/sink.js';
import type { ReceivedMessage } from '../pubsub-to-bigquery/source.js';
import { PubSubSource } from '../pubsub-to-bigquery/source.js';
import type { VideoObject } from './notifications.js';
import { classifyNotification } from './notifications.js';
import type { VideoAnalyticsOptions } from './parameters.js';
import { ProgressLedger } from './progress.js';
import type { ObjectAnnotationLike } from './rows.js';
import {
  ERROR_ATTRIBUTES,
  OUTPUT_ATTRIBUTES,
  annotationsToRows,
  errorMessageFor,
  isRelevant,
  placeClip,
} from './rows.js';

/**
 * The local job behind Google's video analytics flex template. It pulls bucket notifications,
 * annotates each new video with the Video Intelligence API, inserts one row per (file, entity,
 * window) into BigQuery, publishes the relevant rows to the output topic and API failures to the
 * error topic, then acks the notification. Several videos are annotated at once, each on its
 * own, so a long video does not hold up short ones; a notification is acked only after its rows
 * are committed and its messages published.
 */

/** Object tracking for one video: the annotations, or a thrown error carrying a gRPC `code`. */
export interface VideoAnnotator {
  annotate(uri: string): Promise<ObjectAnnotationLike[]>;
}

export interface MessagePublisher {
  publish(topic: string, data: Buffer, attributes: Record<string, string>): Promise<void>;
  exists(topic: string): Promise<boolean>;
}

export interface VideoPipelineConfig {
  options: VideoAnalyticsOptions;
  subscriber: v1.SubscriberClient;
  bigquery: BigQuery;
  annotator: VideoAnnotator;
  publisher: MessagePublisher;
  log: Logger;
  /** Remembers finished videos across restarts; in memory when not given. */
  progress?: ProgressLedger;
  /** Videos annotated at once; 4 unless set. */
  maxVideosInFlight?: number;
  baseline?: Partial<VideoCounts>;
  now?: () => Date;
}

export interface VideoCounts {
  /** Notifications read. */
  read: number;
  /** Notifications acked without annotating (other events, other files). */
  ignored: number;
  videos: number;
  rowsWritten: number;
  published: number;
  /** Videos whose failure went to the error topic. */
  errors: number;
}

const PUBLISH_BACKOFF_MAX_MS = 10_000;
/** Attempts at a video when the API is unreachable: about 15 s of waiting in all. */
const ANNOTATE_ATTEMPTS = 5;

/** gRPC codes that describe the service, not the video. */
const TRANSIENT_CODES: ReadonlySet<number> = new Set([
  GrpcCode.UNAVAILABLE,
  GrpcCode.DEADLINE_EXCEEDED,
  GrpcCode.RESOURCE_EXHAUSTED,
  GrpcCode.ABORTED,
]);

/** The same, when the REST transport reports the HTTP status instead. */
const TRANSIENT_HTTP: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/** True for failures worth another try: transient statuses and network errors (no status). */
export function isTransient(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'number') return TRANSIENT_CODES.has(code) || TRANSIENT_HTTP.has(code);
  return typeof code === 'string' && /^E[A-Z]+$/.test(code);
}

export class VideoAnalyticsPipeline {
  private source: PubSubSource | undefined;
  private sink: BigQuerySink | undefined;
  private readonly queue: ReceivedMessage[] = [];
  private readonly active = new Set<Promise<void>>();
  /** Videos being processed, by progress key: a duplicate notification waits for the first. */
  private readonly busy = new Map<string, Promise<void>>();
  private readonly job = new JobLifecycle();
  private readonly counts: VideoCounts;
  private readonly window = new RateWindow(10_000);
  private readonly progress: ProgressLedger;
  private readonly maxInFlight: number;
  private readonly now: () => Date;

  /** Settles when the pipeline stops: resolves after a drain, rejects on a failure. */
  get done(): Promise<void> {
    return this.job.done;
  }

  constructor(private readonly config: VideoPipelineConfig) {
    this.maxInFlight = config.maxVideosInFlight ?? 4;
    this.progress = config.progress ?? new ProgressLedger();
    this.now = config.now ?? (() => new Date());
    this.counts = {
      read: 0,
      ignored: 0,
      videos: 0,
      rowsWritten: 0,
      published: 0,
      errors: 0,
      ...config.baseline,
    };
  }

  get totals(): Readonly<VideoCounts> {
    return this.counts;
  }

  /** Checks the subscription, the table and both topics, then starts pulling. */
  async start(): Promise<void> {
    const { options, log } = this.config;
    await this.checkSubscription();
    for (const topic of [options.outputTopic.name, options.errorTopic.name]) {
      if (!(await this.config.publisher.exists(topic))) {
        throw new PipelineFailure(
          `The topic ${topic} does not exist. Create it (Part 2 step 4), then launch again.`,
        );
      }
    }
    const spec = formatTableSpec(options.table);
    this.sink = new BigQuerySink(await this.existingTable(), spec, log);
    this.source = new PubSubSource({
      subscriber: this.config.subscriber,
      subscription: options.inputNotificationSubscription.name,
      log,
      concurrentPulls: 1,
      // Pull only what can start soon: held messages wait with their leases extended.
      maxMessagesPerPull: this.maxInFlight,
      maxOutstanding: this.maxInFlight,
      onMessages: (messages) => this.accept(messages),
      onFatal: (error) => this.fail(error),
    });
    this.source.start();
    this.job.state = 'running';
    log.info(
      'reading %s, %d videos at a time, writing %s, publishing %s to %s (threshold %s)',
      options.inputNotificationSubscription.name,
      this.maxInFlight,
      spec,
      options.entities.join(','),
      options.outputTopic.name,
      String(options.confidenceThreshold),
    );
  }

  /**
   * Stops pulling and finishes the videos being annotated. Notifications read but not started
   * are handed back to Pub/Sub at once, for the next run of the job.
   */
  async drain(): Promise<void> {
    if (!this.job.beginDrain()) return this.done;
    await this.source?.stopPulling();
    await this.handBack(this.queue.splice(0));
    while (this.active.size > 0) await Promise.all([...this.active]);
    await this.source?.close();
    this.job.endDrain();
    return this.done;
  }

  metrics(now = Date.now()): PipelineMetrics {
    return jobMetrics(
      {
        state: this.job.state,
        read: this.counts.read,
        written: this.counts.rowsWritten,
        deadLettered: this.counts.errors,
        dropped: this.counts.ignored,
        source: this.source,
        window: this.window,
        failure: this.job.failure,
      },
      now,
    );
  }

  /** Acks what is not a video at once, so it never waits behind long videos for a slot. */
  private accept(messages: ReceivedMessage[]): void {
    this.counts.read += messages.length;
    for (const message of messages) {
      const decision = classifyNotification(message.attributes, message.data);
      if (decision.kind === 'video') {
        this.queue.push(message);
        continue;
      }
      this.config.log.debug('skipping notification %s: %s', message.messageId, decision.reason);
      this.counts.ignored++;
      this.settle(message, 0);
    }
    this.pump();
  }

  private pump(): void {
    while (this.job.state === 'running' && this.active.size < this.maxInFlight) {
      const message = this.queue.shift();
      if (!message) return;
      const work: Promise<void> = this.process(message)
        .catch((error: unknown) => this.fail(error))
        .finally(() => {
          this.active.delete(work);
          this.pump();
        });
      this.active.add(work);
    }
  }

  private async process(message: ReceivedMessage): Promise<void> {
    const decision = classifyNotification(message.attributes, message.data);
    if (decision.kind === 'ignored') return;
    const key = ProgressLedger.keyOf(decision.video);
    for (let earlier = this.busy.get(key); earlier; earlier = this.busy.get(key)) await earlier;
    const work = this.processVideo(message, decision.video, key);
    this.busy.set(key, work);
    try {
      await work;
    } finally {
      this.busy.delete(key);
    }
  }

  private async processVideo(
    message: ReceivedMessage,
    video: VideoObject,
    key: string,
  ): Promise<void> {
    const { options, log } = this.config;
    const stage = this.progress.stageOf(key);
    if (stage === 'done') {
      log.info('%s (generation %s) was processed already; acking', video.uri, video.generation);
      this.settle(message, 0);
      return;
    }
    const started = Date.now();
    let annotations: ObjectAnnotationLike[];
    try {
      annotations = await this.annotateWithRetries(video.uri);
    } catch (error) {
      if (isTransient(error) && this.job.state !== 'running') {
        // Stopping: leave the notification unacked, so the next run annotates the video.
        log.info('leaving %s for the next run: %s', video.uri, errorMessage(error));
        return;
      }
      const body = errorMessageFor(placeClip(video).fileName, asError(error), this.now());
      log.warn('annotating %s failed: %s', video.uri, body.error_message);
      await this.publish(options.errorTopic.name, body, ERROR_ATTRIBUTES);
      this.progress.mark(key, 'done');
      this.counts.errors++;
      this.settle(message, 0);
      return;
    }
    const annotatedMs = Date.now() - started;
    const rows = annotationsToRows(annotations, video, {
      windowIntervalSec: options.windowIntervalSec,
      processingTimestamp: this.now().toISOString(),
    });
    let written = 0;
    if (stage !== 'written' && rows.length > 0 && this.sink) {
      const rejected = await this.sink.write(
        rows.map((r) => ({ insertId: r.insertId, json: JSON.stringify(r.row) })),
      );
      for (const { errors } of rejected) {
        log.error('BigQuery rejected a row of %s: %s', video.uri, insertErrorMessage(errors));
      }
      written = rows.length - rejected.length;
    }
    this.progress.mark(key, 'written');
    const relevant = rows.filter((r) =>
      isRelevant(r.row, options.entities, options.confidenceThreshold),
    );
    await Promise.all(
      relevant.map((r) => this.publish(options.outputTopic.name, r.row, OUTPUT_ATTRIBUTES)),
    );
    this.progress.mark(key, 'done');
    this.counts.videos++;
    this.counts.rowsWritten += written;
    this.counts.published += relevant.length;
    this.settle(message, written);
    log.info(
      '%s: %d annotations, %d rows written, %d published (annotated in %d ms, total %d ms)',
      video.uri,
      annotations.length,
      written,
      relevant.length,
      annotatedMs,
      Date.now() - started,
    );
  }

  /**
   * Annotates one video. A failure that says nothing about the video (the API unreachable or
   * overloaded) is tried again a few times before it counts as the video's error.
   */
  private async annotateWithRetries(uri: string): Promise<ObjectAnnotationLike[]> {
    for (let attempt = 1, wait = 1000; ; attempt++, wait *= 2) {
      try {
        return await this.config.annotator.annotate(uri);
      } catch (error) {
        if (!isTransient(error) || attempt >= ANNOTATE_ATTEMPTS || this.job.state !== 'running') {
          throw error;
        }
        this.config.log.warn(
          'annotating %s failed (attempt %d of %d), trying again: %s',
          uri,
          attempt,
          ANNOTATE_ATTEMPTS,
          errorMessage(error),
        );
        await sleep(wait);
      }
    }
  }

  /** Acks one notification and records how long it took from its publication. */
  private settle(message: ReceivedMessage, rows: number): void {
    const now = Date.now();
    this.window.add(now, rows, [now - message.publishTimeMs]);
    this.source?.ack([message]);
  }

  /** Publishes one JSON message, retrying failures that may pass; a missing topic is fatal. */
  private async publish(
    topic: string,
    body: object,
    attributes: Readonly<Record<string, string>>,
  ): Promise<void> {
    const data = Buffer.from(JSON.stringify(body));
    for (let wait = 100; ; wait = Math.min(wait * 2, PUBLISH_BACKOFF_MAX_MS)) {
      try {
        await this.config.publisher.publish(topic, data, { ...attributes });
        return;
      } catch (error) {
        const code = (error as { code?: unknown } | null)?.code;
        if (code === GrpcCode.NOT_FOUND || code === GrpcCode.PERMISSION_DENIED) {
          throw new PipelineFailure(
            `Publishing to ${topic} failed: ${errorMessage(error)}. Check that the topic ` +
              'exists (Part 2 step 4), then launch the job again.',
            { cause: error },
          );
        }
        this.config.log.warn('publishing to %s failed, retrying: %s', topic, errorMessage(error));
        await sleep(wait);
      }
    }
  }

  /** Gives notifications back to Pub/Sub for redelivery (an ack deadline of 0). */
  private async handBack(messages: ReceivedMessage[]): Promise<void> {
    if (messages.length === 0) return;
    try {
      await this.config.subscriber.modifyAckDeadline({
        subscription: this.config.options.inputNotificationSubscription.name,
        ackIds: messages.map((m) => m.ackId),
        ackDeadlineSeconds: 0,
      });
    } catch (error) {
      // They come back anyway once their ack deadline passes.
      this.config.log.debug('handing back %d notifications failed: %s', messages.length, error);
    }
  }

  private async checkSubscription(): Promise<void> {
    const name = this.config.options.inputNotificationSubscription.name;
    try {
      await this.config.subscriber.getSubscription({ subscription: name });
    } catch (error) {
      if (isNotFound(error)) {
        throw new PipelineFailure(
          `The notification subscription ${name} does not exist. Create it with the bucket's ` +
            'notification (Part 2 step 2), then launch again.',
          { cause: error },
        );
      }
      throw error;
    }
  }

  private async existingTable(): Promise<Table> {
    const ref = this.config.options.table;
    const table = this.config.bigquery
      .dataset(ref.datasetId, { projectId: ref.projectId })
      .table(ref.tableId);
    const [exists] = await table.exists();
    if (!exists) {
      throw new PipelineFailure(
        `The table ${formatTableSpec(ref)} does not exist. The template never creates it: ` +
          'create it with its schema (Part 2 step 3), then launch the job again.',
      );
    }
    return table;
  }

  private fail(error: unknown): void {
    if (this.job.fail(error)) void this.source?.stopPulling();
  }
}

function asError(error: unknown): { code?: unknown; message?: unknown } {
  if (typeof error === 'object' && error !== null) return error;
  return { message: String(error) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

import type { BigQuery, Table } from '@google-cloud/bigquery';
import type { v1 } from '@google-cloud/pubsub';

import { isAlreadyExists, isNotFound } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { PipelineMetrics } from '../../local/dataflow/protocol.js';
import type { UdfOutcome } from '../udf/sandbox.js';
import type { JavaScriptUdf } from '../udf/udf.js';
import { JobLifecycle, RateWindow, jobMetrics } from './metrics.js';
import type { PubSubToBigQueryOptions, TableRef } from './parameters.js';
import { formatTableSpec } from './parameters.js';
import type { DeadLetterRow } from './rows.js';
import {
  DEAD_LETTER_SCHEMA,
  deadLetterRow,
  failure,
  insertErrorMessage,
  jsonToRow,
} from './rows.js';
import type { SinkRow } from './sink.js';
import { BigQuerySink } from './sink.js';
import type { ReceivedMessage } from './source.js';
import { PubSubSource } from './source.js';

/**
 * The local job behind "Pub/Sub Subscription to BigQuery": pull, (UDF), JSON to row, insert,
 * dead-letter what fails, then ack. Messages are grouped into batches of up to `batchRows` or
 * `batchDelayMs`, several batches are written at once, and a message is acked only after its row
 * (or its dead-letter record) was committed.
 */

export interface PipelineConfig {
  options: PubSubToBigQueryOptions;
  subscriber: v1.SubscriberClient;
  bigquery: BigQuery;
  udf?: JavaScriptUdf;
  log: Logger;
  batchRows?: number;
  batchDelayMs?: number;
  maxBatchesInFlight?: number;
  concurrentPulls?: number;
  maxOutstanding?: number;
  /** Counts carried over from before a restart of the job's process. */
  baseline?: PipelineCounts;
}

export interface PipelineCounts {
  read: number;
  written: number;
  deadLettered: number;
  dropped: number;
}

/** A reason the job cannot run at all; it fails instead of restarting. */
export class PipelineFailure extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PipelineFailure';
  }
}

export class PubSubToBigQueryPipeline {
  private source: PubSubSource | undefined;
  private output: BigQuerySink | undefined;
  private deadLetter: BigQuerySink | undefined;
  private batch: ReceivedMessage[] = [];
  private batchTimer: NodeJS.Timeout | undefined;
  private readonly waiting: ReceivedMessage[][] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly job = new JobLifecycle();
  private readonly counts: PipelineCounts;
  private readonly window = new RateWindow(10_000);
  private readonly batchRows: number;
  private readonly batchDelayMs: number;
  private readonly maxBatchesInFlight: number;

  /** Settles when the pipeline stops: resolves after a drain, rejects on a failure. */
  get done(): Promise<void> {
    return this.job.done;
  }

  constructor(private readonly config: PipelineConfig) {
    this.batchRows = config.batchRows ?? 500;
    this.batchDelayMs = config.batchDelayMs ?? 50;
    this.maxBatchesInFlight = config.maxBatchesInFlight ?? 4;
    this.counts = { read: 0, written: 0, deadLettered: 0, dropped: 0, ...config.baseline };
  }

  /** Checks the subscription and tables, creates the dead-letter table if needed, then pulls. */
  async start(): Promise<void> {
    const { options, log } = this.config;
    await this.checkSubscription();
    const outputTable = await this.existingTable(options.outputTable);
    const deadLetterTable = await this.ensureDeadLetterTable(options.deadLetterTable);
    this.output = new BigQuerySink(outputTable, formatTableSpec(options.outputTable), log);
    this.deadLetter = new BigQuerySink(
      deadLetterTable,
      formatTableSpec(options.deadLetterTable),
      log,
    );
    this.source = new PubSubSource({
      subscriber: this.config.subscriber,
      subscription: options.inputSubscription.name,
      log,
      concurrentPulls: this.config.concurrentPulls ?? 8,
      maxOutstanding: this.config.maxOutstanding ?? 20_000,
      onMessages: (messages) => this.accept(messages),
      onFatal: (error) => this.fail(error),
    });
    this.source.start();
    this.job.state = 'running';
    log.info(
      'reading %s, writing %s (dead letters to %s)',
      options.inputSubscription.name,
      formatTableSpec(options.outputTable),
      formatTableSpec(options.deadLetterTable),
    );
  }

  /** Stops pulling, finishes every message already read, acks, then resolves `done`. */
  async drain(): Promise<void> {
    if (!this.job.beginDrain()) return this.done;
    await this.source?.stopPulling();
    this.flushBatch();
    while (this.inFlight.size > 0 || this.waiting.length > 0) {
      await Promise.all([...this.inFlight]);
    }
    await this.source?.close();
    await this.config.udf?.close();
    this.job.endDrain();
    return this.done;
  }

  metrics(now = Date.now()): PipelineMetrics {
    return jobMetrics(
      {
        state: this.job.state,
        read: this.counts.read,
        written: this.counts.written,
        deadLettered: this.counts.deadLettered,
        dropped: this.counts.dropped,
        source: this.source,
        window: this.window,
        failure: this.job.failure,
      },
      now,
    );
  }

  private async checkSubscription(): Promise<void> {
    const name = this.config.options.inputSubscription.name;
    try {
      await this.config.subscriber.getSubscription({ subscription: name });
    } catch (error) {
      if (isNotFound(error)) {
        throw new PipelineFailure(
          `The input subscription ${name} does not exist. Create it (step 5), then launch again.`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  private async existingTable(ref: TableRef): Promise<Table> {
    const table = this.tableOf(ref);
    const [exists] = await table.exists();
    if (!exists) {
      throw new PipelineFailure(
        `The output table ${formatTableSpec(ref)} does not exist. The template never creates ` +
          'it: create the table with its schema (step 4), then launch the job again.',
      );
    }
    return table;
  }

  private async ensureDeadLetterTable(ref: TableRef): Promise<Table> {
    const table = this.tableOf(ref);
    const [exists] = await table.exists();
    if (exists) return table;
    try {
      await table.dataset.createTable(ref.tableId, { schema: DEAD_LETTER_SCHEMA });
      this.config.log.info('created the dead-letter table %s', formatTableSpec(ref));
    } catch (error) {
      if (isAlreadyExists(error)) return table;
      if (isNotFound(error)) {
        throw new PipelineFailure(
          `Cannot create the dead-letter table ${formatTableSpec(ref)}: its dataset does not ` +
            'exist. Create the dataset or choose another outputDeadletterTable.',
          { cause: error },
        );
      }
      throw error;
    }
    return table;
  }

  private tableOf(ref: TableRef): Table {
    return this.config.bigquery
      .dataset(ref.datasetId, { projectId: ref.projectId })
      .table(ref.tableId);
  }

  private accept(messages: ReceivedMessage[]): void {
    this.counts.read += messages.length;
    this.batch.push(...messages);
    if (this.batch.length >= this.batchRows) this.flushBatch();
    else this.batchTimer ??= setTimeout(() => this.flushBatch(), this.batchDelayMs);
  }

  private flushBatch(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = undefined;
    while (this.batch.length > 0) this.waiting.push(this.batch.splice(0, this.batchRows));
    this.dispatch();
  }

  private dispatch(): void {
    while (this.inFlight.size < this.maxBatchesInFlight && this.waiting.length > 0) {
      const batch = this.waiting.shift() ?? [];
      const work: Promise<void> = this.process(batch)
        .catch((error: unknown) => this.fail(error))
        .finally(() => {
          this.inFlight.delete(work);
          this.dispatch();
        });
      this.inFlight.add(work);
    }
  }

  private async process(batch: ReceivedMessage[]): Promise<void> {
    const payloads = batch.map((m) => m.data.toString('utf8'));
    const outcomes: UdfOutcome[] = this.config.udf
      ? await this.config.udf.transform(payloads)
      : payloads.map((json) => ({ kind: 'output', json }));

    const rows: SinkRow[] = [];
    const byInsertId = new Map<string, ReceivedMessage>();
    const dead: SinkRow[] = [];
    let dropped = 0;
    batch.forEach((message, i) => {
      const outcome = outcomes[i] ?? { kind: 'failed', message: 'no UDF result', stacktrace: '' };
      const payload = payloads[i] ?? '';
      if (outcome.kind === 'dropped') {
        dropped++;
        return;
      }
      if (outcome.kind === 'failed') {
        dead.push(toDead(message, deadLetterRow(message, outcome, payload)));
        return;
      }
      const converted = jsonToRow(outcome.json);
      if (converted.kind === 'failed') {
        dead.push(toDead(message, deadLetterRow(message, converted.error, payload)));
        return;
      }
      // The text goes to BigQuery as it is: it parsed as one JSON object.
      rows.push({ insertId: message.messageId, json: outcome.json });
      byInsertId.set(message.messageId, message);
    });

    const rejected = rows.length > 0 && this.output ? await this.output.write(rows) : [];
    for (const { row, errors } of rejected) {
      const message = byInsertId.get(row.insertId);
      if (!message) continue;
      const cause = failure(insertErrorMessage(errors));
      dead.push(toDead(message, deadLetterRow(message, cause, row.json)));
    }
    if (dead.length > 0 && this.deadLetter) {
      const lost = await this.deadLetter.write(dead);
      for (const { errors } of lost) {
        this.config.log.error(
          'the dead-letter table rejected a record: %s',
          insertErrorMessage(errors),
        );
      }
    }

    const now = Date.now();
    const written = rows.length - rejected.length;
    this.counts.written += written;
    this.counts.deadLettered += dead.length;
    this.counts.dropped += dropped;
    this.window.add(
      now,
      written,
      batch.map((m) => now - m.publishTimeMs),
    );
    this.source?.ack(batch);
  }

  private fail(error: unknown): void {
    if (this.job.fail(error)) void this.source?.stopPulling();
  }
}

function toDead(message: ReceivedMessage, record: DeadLetterRow): SinkRow {
  return { insertId: message.messageId, json: JSON.stringify(record) };
}

import type { Table } from '@google-cloud/bigquery';

import type { Logger } from '../../log.js';
import type { InsertError, JsonRow } from './rows.js';
import { isTransientInsertFailure } from './rows.js';

/**
 * Streams rows into one table with `insertAll` (`tabledata.insertAll`), the way the classic
 * template writes. Every row carries an `insertId` (the Pub/Sub message id), so sending it again
 * after a failure or a redelivery adds no duplicate. Failures that may pass later are retried
 * with backoff until they do; rows BigQuery rejects for good are returned to the caller.
 */

export interface SinkRow {
  insertId: string;
  json: JsonRow;
}

export interface RejectedRow {
  row: SinkRow;
  errors: InsertError[];
}

/** The table is gone or unusable: retrying cannot help, the job must stop. */
export class FatalSinkError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FatalSinkError';
  }
}

const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 10_000;

export class BigQuerySink {
  /** Request attempts that failed and were retried, for the job's metrics. */
  retries = 0;

  constructor(
    private readonly table: Table,
    private readonly spec: string,
    private readonly log: Logger,
    private readonly stopped: () => boolean = () => false,
  ) {}

  /** Inserts the rows; resolves once each is committed or rejected for good. */
  async write(rows: SinkRow[]): Promise<RejectedRow[]> {
    const rejected: RejectedRow[] = [];
    let pending = rows;
    let wait = BACKOFF_START_MS;
    while (pending.length > 0) {
      const outcome = await this.insertOnce(pending);
      if (outcome.kind === 'done') {
        const retry: SinkRow[] = [];
        for (const failed of outcome.failed) {
          if (isTransientInsertFailure(failed.errors)) retry.push(failed.row);
          else rejected.push(failed);
        }
        pending = retry;
        if (pending.length === 0) break;
      } else if (outcome.kind === 'rejected') {
        // The whole request was refused as invalid: every row carries the reason.
        rejected.push(...pending.map((row) => ({ row, errors: outcome.errors })));
        break;
      }
      this.retries++;
      if (this.stopped() && wait >= BACKOFF_MAX_MS) {
        this.log.warn('still retrying %d rows for %s while stopping', pending.length, this.spec);
      }
      await sleep(wait);
      wait = Math.min(wait * 2, BACKOFF_MAX_MS);
    }
    return rejected;
  }

  private async insertOnce(
    rows: SinkRow[],
  ): Promise<
    | { kind: 'done'; failed: RejectedRow[] }
    | { kind: 'rejected'; errors: InsertError[] }
    | { kind: 'retry' }
  > {
    try {
      await this.table.insert(rows, { raw: true, skipInvalidRows: true, partialRetries: 0 });
      return { kind: 'done', failed: [] };
    } catch (error) {
      const partial = partialFailures(error);
      if (partial) return { kind: 'done', failed: partial };
      const status = httpStatus(error);
      if (status === 404) {
        throw new FatalSinkError(
          `The BigQuery table ${this.spec} does not exist (any more). ` +
            'Create it with its schema, then launch the job again.',
          { cause: error },
        );
      }
      if (status === 400) {
        return { kind: 'rejected', errors: [{ reason: 'invalid', message: describe(error) }] };
      }
      this.log.warn('insert into %s failed, retrying: %s', this.spec, describe(error));
      return { kind: 'retry' };
    }
  }
}

function partialFailures(error: unknown): RejectedRow[] | undefined {
  const e = error as { name?: string; errors?: unknown };
  if (e?.name !== 'PartialFailureError' || !Array.isArray(e.errors)) return undefined;
  return (e.errors as { row?: SinkRow; errors?: InsertError[] }[])
    .filter((failure): failure is { row: SinkRow; errors?: InsertError[] } => !!failure.row)
    .map((failure) => ({ row: failure.row, errors: failure.errors ?? [] }));
}

function httpStatus(error: unknown): number | undefined {
  const e = error as { code?: unknown; response?: { statusCode?: unknown } } | null;
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.response?.statusCode === 'number') return e.response.statusCode;
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

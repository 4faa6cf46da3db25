import type { Table } from '@google-cloud/bigquery';

import type { Logger } from '../../log.js';
import type { InsertError } from './rows.js';
import { isTransientInsertFailure } from './rows.js';

/**
 * Streams rows into one table with `insertAll` (`tabledata.insertAll`), the way the classic
 * template writes. Every row carries an `insertId` (the Pub/Sub message id), so sending it again
 * after a failure or a redelivery adds no duplicate. Failures that may pass later are retried
 * with backoff until they do; rows BigQuery rejects for good are returned to the caller.
 *
 * Rows travel as the JSON text they arrived in (already checked to be one JSON object), and the
 * request body is put together from those texts: `Table.insert` would deep-copy every row and
 * the client would walk it again looking for project-id placeholders, which cost more CPU than
 * the rest of the pipeline at tens of thousands of rows a second. The request still goes through
 * the official client's `Table.request`, with its retries and endpoint handling.
 */

export interface SinkRow {
  insertId: string;
  /** The row as JSON text: one JSON object. */
  json: string;
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
/** BigQuery refuses an insertAll request above 10 MB; stay well below. */
const MAX_REQUEST_BYTES = 5 * 1024 * 1024;
const BACKOFF_MAX_MS = 10_000;

export class BigQuerySink {
  /** Request attempts that failed and were retried, for the job's metrics. */
  retries = 0;

  constructor(
    private readonly table: Table,
    private readonly spec: string,
    private readonly log: Logger,
  ) {}

  /** Inserts the rows; resolves once each is committed or rejected for good. */
  async write(rows: SinkRow[]): Promise<RejectedRow[]> {
    const rejected: RejectedRow[] = [];
    for (const chunk of byRequestSize(rows)) rejected.push(...(await this.writeChunk(chunk)));
    return rejected;
  }

  private async writeChunk(rows: SinkRow[]): Promise<RejectedRow[]> {
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
    let response: InsertAllResponse;
    try {
      const [body] = (await this.table.request({
        method: 'POST',
        uri: '/insertAll',
        body: insertAllBody(rows),
        headers: { 'Content-Type': 'application/json' },
      })) as unknown as [InsertAllResponse];
      response = body ?? {};
    } catch (error) {
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
    const failed: RejectedRow[] = [];
    for (const insertError of response.insertErrors ?? []) {
      const row = rows[Number(insertError.index)];
      if (row) failed.push({ row, errors: insertError.errors ?? [] });
    }
    return { kind: 'done', failed };
  }
}

interface InsertAllResponse {
  insertErrors?: { index?: number | string; errors?: InsertError[] }[];
}

/** Splits rows into groups whose requests stay under `MAX_REQUEST_BYTES`. */
export function byRequestSize(rows: SinkRow[], limit = MAX_REQUEST_BYTES): SinkRow[][] {
  const chunks: SinkRow[][] = [];
  let current: SinkRow[] = [];
  let size = 0;
  for (const row of rows) {
    const rowSize = Buffer.byteLength(row.json) + row.insertId.length + 32;
    if (current.length > 0 && size + rowSize > limit) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(row);
    size += rowSize;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** The `tabledata.insertAll` request, built from the rows' JSON texts. */
export function insertAllBody(rows: SinkRow[]): string {
  const parts = rows.map(
    (row) => `{"insertId":${JSON.stringify(row.insertId)},"json":${row.json}}`,
  );
  return `{"skipInvalidRows":true,"rows":[${parts.join(',')}]}`;
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

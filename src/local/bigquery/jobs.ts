import { randomUUID } from 'node:crypto';

import type { DuckDBConnection, DuckDBValue } from '@duckdb/node-api';

import { ApiError, alreadyExists, notFound } from '../http.js';
import type { Catalog, DatasetReference, TableReference } from './catalog.js';
import { tableKey } from './catalog.js';
import type { TimestampFormat, WireRow } from './cells.js';
import { encodeRow, fieldFromDuck } from './cells.js';
import type { QueryParameter } from './params.js';
import { renderParameters } from './params.js';
import type { TableField } from './schema.js';
import type { StatementType } from './sql.js';
import { invalidQuery, translate } from './sql.js';
import type { DuckStore } from './store.js';
import type { TableData } from './tabledata.js';

/**
 * Query jobs. A query runs to completion when its job is inserted (DuckDB answers in
 * milliseconds for the lab's data), so every job is DONE by the time the client polls it; the
 * result rows stay in memory with the job and are paged from there. Jobs live as long as the
 * process, the most recent `MAX_JOBS` of them.
 */

export interface QueryConfig {
  query?: string;
  useLegacySql?: boolean;
  defaultDataset?: DatasetReference;
  destinationTable?: TableReference;
  writeDisposition?: string;
  createDisposition?: string;
  queryParameters?: QueryParameter[];
  parameterMode?: string;
  [field: string]: unknown;
}

export interface JobResource {
  kind: 'bigquery#job';
  id: string;
  etag: string;
  jobReference: { projectId: string; jobId: string; location: string };
  configuration: Record<string, unknown>;
  status: { state: 'DONE'; errorResult?: ErrorProto; errors?: ErrorProto[] };
  statistics: Record<string, unknown>;
  user_email: string;
}

interface ErrorProto {
  reason: string;
  location?: string;
  message: string;
}

interface QueryResult {
  fields: TableField[];
  statementType: StatementType;
  /** In memory for a plain query; paged from the table for a query with a destination. */
  rows?: DuckDBValue[][];
  destination?: TableReference;
  totalRows: number;
  affectedRows?: number;
}

interface JobRecord {
  resource: JobResource;
  result?: QueryResult;
  error?: ApiError;
}

export interface ResultPage {
  fields: TableField[];
  rows: WireRow[];
  totalRows: number;
  pageToken?: string;
  affectedRows?: number;
}

/** Creates or replaces a destination table; supplied by the engine, which owns tables. */
export type DestinationWriter = (
  connection: DuckDBConnection,
  ref: TableReference,
  fields: TableField[],
  replace: boolean,
) => Promise<void>;

const MAX_JOBS = 1000;
const DEFAULT_PAGE_ROWS = 100_000;
export const LOCATION = 'US';

function reasonOf(error: ApiError): string {
  if (error.reason) return error.reason;
  return error.status === 'NOT_FOUND'
    ? 'notFound'
    : error.status === 'ALREADY_EXISTS'
      ? 'duplicate'
      : 'invalidQuery';
}

/** Any failure while running SQL, as the API error the client should see. */
function queryError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return invalidQuery(message.replace(/\n+/g, ' ').trim());
}

export class QueryJobs {
  private readonly jobs = new Map<string, JobRecord>();

  constructor(
    private readonly store: DuckStore,
    private readonly catalog: Catalog,
    private readonly tableData: TableData,
    private readonly writeDestination: DestinationWriter,
  ) {}

  private key(projectId: string, jobId: string): string {
    return `${projectId}:${jobId}`;
  }

  /** jobs.insert: runs the query and records the job, failed or not. */
  async insert(projectId: string, body: Record<string, unknown>): Promise<JobResource> {
    const reference = (body.jobReference ?? {}) as { jobId?: string; location?: string };
    const jobId = reference.jobId ?? `job_${randomUUID().replaceAll('-', '_')}`;
    if (!/^[A-Za-z0-9_-]{1,1024}$/.test(jobId)) {
      throw new ApiError('INVALID_ARGUMENT', `Invalid job ID "${jobId}".`);
    }
    if (this.jobs.has(this.key(projectId, jobId))) {
      throw alreadyExists(`Already Exists: Job ${projectId}:${LOCATION}.${jobId}`);
    }
    const configuration = (body.configuration ?? {}) as Record<string, unknown>;
    const query = configuration.query as QueryConfig | undefined;
    if (!query) {
      const kind = Object.keys(configuration).find((k) => ['load', 'copy', 'extract'].includes(k));
      throw new ApiError(
        'UNIMPLEMENTED',
        `${kind ?? 'This'} job is not supported by the local BigQuery; only query jobs run here (use tabledata.insertAll to load rows).`,
      );
    }
    const dryRun = configuration.dryRun === true;
    const record = await this.run(projectId, jobId, query, dryRun);
    record.resource.configuration = { ...configuration, jobType: 'QUERY' };
    if (!dryRun) this.remember(record);
    return record.resource;
  }

  /** jobs.query: runs the query and answers with its first page, or throws its error. */
  async query(
    projectId: string,
    body: QueryConfig & {
      maxResults?: number;
      dryRun?: boolean;
      formatOptions?: Record<string, unknown>;
    },
    format: TimestampFormat,
  ): Promise<{ job: JobResource; page: ResultPage }> {
    const jobId = `job_${randomUUID().replaceAll('-', '_')}`;
    const record = await this.run(projectId, jobId, body, body.dryRun === true);
    if (record.error) throw record.error;
    record.resource.configuration = {
      jobType: 'QUERY',
      query: { query: body.query, useLegacySql: false },
    };
    if (!body.dryRun) this.remember(record);
    const page = await this.page(record, { maxResults: body.maxResults }, format);
    return { job: record.resource, page };
  }

  get(projectId: string, jobId: string): JobResource {
    return this.record(projectId, jobId).resource;
  }

  list(projectId: string): JobResource[] {
    return [...this.jobs.values()]
      .map((r) => r.resource)
      .filter((r) => r.jobReference.projectId === projectId)
      .reverse();
  }

  delete(projectId: string, jobId: string): void {
    this.record(projectId, jobId);
    this.jobs.delete(this.key(projectId, jobId));
  }

  /** jobs.getQueryResults */
  async results(
    projectId: string,
    jobId: string,
    options: { maxResults?: number; pageToken?: string; startIndex?: number },
    format: TimestampFormat,
  ): Promise<{ job: JobResource; page: ResultPage }> {
    const record = this.record(projectId, jobId);
    if (record.error) throw record.error;
    return { job: record.resource, page: await this.page(record, options, format) };
  }

  private record(projectId: string, jobId: string): JobRecord {
    const found = this.jobs.get(this.key(projectId, jobId));
    if (!found) throw notFound(`Not found: Job ${projectId}:${LOCATION}.${jobId}`);
    return found;
  }

  private remember(record: JobRecord): void {
    const ref = record.resource.jobReference;
    this.jobs.set(this.key(ref.projectId, ref.jobId), record);
    while (this.jobs.size > MAX_JOBS) {
      const oldest = this.jobs.keys().next().value;
      if (oldest === undefined) break;
      this.jobs.delete(oldest);
    }
  }

  private async run(
    projectId: string,
    jobId: string,
    config: QueryConfig,
    dryRun: boolean,
  ): Promise<JobRecord> {
    const started = Date.now();
    const resource: JobResource = {
      kind: 'bigquery#job',
      id: `${projectId}:${LOCATION}.${jobId}`,
      etag: randomUUID(),
      jobReference: { projectId, jobId, location: LOCATION },
      configuration: {},
      status: { state: 'DONE' },
      statistics: {},
      user_email: 'local@cymbal-lab',
    };
    const record: JobRecord = { resource };
    try {
      record.result = await this.execute(projectId, config, dryRun);
    } catch (error) {
      record.error = queryError(error);
      const proto = {
        reason: reasonOf(record.error),
        location: 'query',
        message: record.error.message,
      };
      resource.status = { state: 'DONE', errorResult: proto, errors: [proto] };
    }
    const ended = Date.now();
    const result = record.result;
    resource.statistics = {
      creationTime: String(started),
      startTime: String(started),
      endTime: String(ended),
      totalBytesProcessed: '0',
      query: {
        totalBytesProcessed: '0',
        totalBytesBilled: '0',
        cacheHit: false,
        ...(result ? { statementType: result.statementType } : {}),
        ...(result?.affectedRows !== undefined
          ? { numDmlAffectedRows: String(result.affectedRows) }
          : {}),
        ...(dryRun && result ? { schema: { fields: result.fields } } : {}),
      },
    };
    return record;
  }

  private async execute(
    projectId: string,
    config: QueryConfig,
    dryRun: boolean,
  ): Promise<QueryResult> {
    if (typeof config.query !== 'string' || config.query.trim() === '') {
      throw invalidQuery('The query is empty; set configuration.query.query to a SQL statement.');
    }
    if (config.useLegacySql === true) {
      throw invalidQuery(
        'Legacy SQL is not supported by the local BigQuery; set useLegacySql to false.',
      );
    }
    const parameters = renderParameters(config.queryParameters, config.parameterMode);
    const translation = translate(config.query, {
      defaultProjectId: projectId,
      defaultDataset: config.defaultDataset,
      resolveTable: (ref) => {
        this.catalog.table(ref);
        return this.catalog.duckTable(ref);
      },
      namedParameters: parameters.named,
      positionalParameters: parameters.positional,
    });
    const { sql, statementType } = translation;
    if (dryRun) {
      const prepared = await this.store.reader.prepare(sql);
      const fields = this.fields(
        Array.from({ length: prepared.columnCount }, (_, i) => prepared.columnName(i)),
        (i) => prepared.columnType(i),
      );
      prepared.destroySync();
      return { fields, statementType, totalRows: 0 };
    }
    if (statementType !== 'SELECT') {
      if (config.destinationTable) {
        throw invalidQuery('A destination table can only be set for a SELECT query.');
      }
      const affected = await this.store.exclusive(async (c) => {
        const result = await c.runAndReadAll(sql);
        return Number(result.getRows()[0]?.[0] ?? 0);
      });
      return { fields: [], statementType, totalRows: 0, affectedRows: affected };
    }
    if (config.destinationTable) return this.intoDestination(projectId, config, sql);
    const result = await this.store.reader.runAndReadAll(sql);
    const fields = this.fields(result.columnNames(), (i) => result.columnType(i));
    const rows = result.getRows();
    return { fields, statementType, rows, totalRows: rows.length };
  }

  private fields(
    names: string[],
    typeOf: (i: number) => Parameters<typeof fieldFromDuck>[1],
  ): TableField[] {
    const seen = new Set<string>();
    const duplicates = names.filter((n) => seen.has(n.toLowerCase()) || !seen.add(n.toLowerCase()));
    if (duplicates.length > 0) {
      throw invalidQuery(
        `Duplicate column names in the result are not supported. Found duplicate(s): ${duplicates.join(', ')}`,
      );
    }
    return names.map((name, i) => fieldFromDuck(name, typeOf(i)));
  }

  private async intoDestination(
    projectId: string,
    config: QueryConfig,
    sql: string,
  ): Promise<QueryResult> {
    const target = config.destinationTable!;
    const ref: TableReference = {
      projectId: target.projectId ?? projectId,
      datasetId: target.datasetId,
      tableId: target.tableId,
    };
    this.catalog.dataset(ref);
    const prepared = await this.store.reader.prepare(sql);
    const fields = this.fields(
      Array.from({ length: prepared.columnCount }, (_, i) => prepared.columnName(i)),
      (i) => prepared.columnType(i),
    );
    prepared.destroySync();
    const write = String(config.writeDisposition ?? 'WRITE_EMPTY').toUpperCase();
    const create = String(config.createDisposition ?? 'CREATE_IF_NEEDED').toUpperCase();
    const existing = this.catalog.findTable(ref);
    if (!existing && create === 'CREATE_NEVER') throw notFound(`Not found: Table ${tableKey(ref)}`);
    if (existing && write === 'WRITE_EMPTY' && (await this.tableData.countRows(ref)) > 0) {
      throw alreadyExists(`Already Exists: Table ${tableKey(ref)}`);
    }
    const replace = !existing || write === 'WRITE_TRUNCATE';
    await this.store.transaction(async (c) => {
      if (replace) await this.writeDestination(c, ref, fields, true);
      const columns = replace ? fields : this.catalog.table(ref).schema.fields;
      const names = columns.map((f) => `"${f.name.replaceAll('"', '""')}"`).join(', ');
      await c.run(`INSERT INTO ${this.catalog.duckTable(ref)} (${names}) SELECT * FROM (${sql})`);
    });
    const totalRows = await this.tableData.countRows(ref);
    return {
      fields: this.catalog.table(ref).schema.fields,
      statementType: 'SELECT',
      destination: ref,
      totalRows,
    };
  }

  private async page(
    record: JobRecord,
    options: { maxResults?: number; pageToken?: string; startIndex?: number },
    format: TimestampFormat,
  ): Promise<ResultPage> {
    const result = record.result;
    if (!result) return { fields: [], rows: [], totalRows: 0 };
    const start = options.pageToken ? Number(options.pageToken) : Number(options.startIndex ?? 0);
    if (!Number.isInteger(start) || start < 0) {
      throw new ApiError(
        'INVALID_ARGUMENT',
        `Invalid page token or start index: ${options.pageToken ?? options.startIndex}`,
      );
    }
    const size = Math.max(0, Math.floor(Number(options.maxResults ?? DEFAULT_PAGE_ROWS)));
    let rows: WireRow[];
    if (result.destination) {
      rows = (
        await this.tableData.list(
          result.destination,
          { startIndex: start, maxResults: size },
          format,
        )
      ).rows;
    } else {
      rows = (result.rows ?? [])
        .slice(start, start + size)
        .map((values) => encodeRow(result.fields, values, format));
    }
    const next = start + rows.length;
    return {
      fields: result.fields,
      rows,
      totalRows: result.totalRows,
      ...(next < result.totalRows && rows.length > 0 ? { pageToken: String(next) } : {}),
      ...(result.affectedRows !== undefined ? { affectedRows: result.affectedRows } : {}),
    };
  }
}

import { randomUUID } from 'node:crypto';
import { join } from 'node:path';

import type { DuckDBConnection } from '@duckdb/node-api';

import { ApiError, alreadyExists, invalidArgument } from '../http.js';
import type {
  DatasetReference,
  DatasetResource,
  TableReference,
  TableResource,
} from './catalog.js';
import { Catalog, datasetKey, tableKey } from './catalog.js';
import { LOCATION, QueryJobs } from './jobs.js';
import type { TableField } from './schema.js';
import {
  columnDefinition,
  columnDefinitions,
  findField,
  normalizeSchema,
  quoteIdent,
  schemaChange,
} from './schema.js';
import { DuckStore } from './store.js';
import { TableData } from './tabledata.js';

/**
 * The local BigQuery: datasets, tables, streaming inserts and query jobs over one DuckDB file.
 * The HTTP routes call it; other local services may call it in process too (the Dataflow
 * pipeline counts rows with `countRows`, tests read tables with `rows`).
 */

const DATASET_ID = /^[A-Za-z0-9_]{1,1024}$/;
const TABLE_ID = /^[\p{L}\p{M}\p{N}\p{Pc}\p{Pd} ]{1,1024}$/u;

/** Table fields a client may set, besides the schema. */
const TABLE_FIELDS = [
  'description',
  'friendlyName',
  'labels',
  'expirationTime',
  'timePartitioning',
  'rangePartitioning',
  'clustering',
  'requirePartitionFilter',
] as const;

const DATASET_FIELDS = [
  'description',
  'friendlyName',
  'labels',
  'defaultTableExpirationMs',
  'defaultPartitionExpirationMs',
  'access',
] as const;

type Body = Record<string, unknown>;

function now(): string {
  return String(Date.now());
}

/** Applies the settable fields of `body`: PATCH keeps what is absent, PUT removes it. */
function applyFields(
  target: Record<string, unknown>,
  body: Body,
  fields: readonly string[],
  replace: boolean,
): void {
  for (const field of fields) {
    if (!(field in body)) {
      if (replace) delete target[field];
      continue;
    }
    const value = body[field];
    if (value === null) delete target[field];
    else if (field === 'labels' && !replace && typeof value === 'object') {
      const labels = { ...((target.labels as Record<string, string>) ?? {}) };
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (v === null) delete labels[k];
        else labels[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
      target.labels = labels;
    } else target[field] = value;
  }
}

function checkPartitioning(fields: TableField[], body: Body): void {
  const partitioning = body.timePartitioning as { field?: string; type?: string } | undefined;
  if (!partitioning) return;
  const type = String(partitioning.type ?? 'DAY').toUpperCase();
  if (!['DAY', 'HOUR', 'MONTH', 'YEAR'].includes(type)) {
    throw invalidArgument(`Invalid time partitioning type ${type}; use DAY, HOUR, MONTH or YEAR.`);
  }
  if (partitioning.field) {
    const field = findField(fields, partitioning.field);
    if (
      !field ||
      !['TIMESTAMP', 'DATE', 'DATETIME'].includes(field.type) ||
      field.mode === 'REPEATED'
    ) {
      throw invalidArgument(
        `The field specified for time partitioning can only be of type TIMESTAMP, DATE or DATETIME. The type found is: ${field?.type ?? 'missing'}.`,
      );
    }
  }
  body.timePartitioning = { ...partitioning, type };
}

export class BigQueryEngine {
  readonly tableData: TableData;
  readonly jobs: QueryJobs;

  private constructor(
    private readonly store: DuckStore,
    readonly catalog: Catalog,
    readonly projectId: string,
  ) {
    this.tableData = new TableData(store, catalog);
    this.jobs = new QueryJobs(store, catalog, this.tableData, (c, ref, fields) =>
      this.replaceTable(c, ref, fields),
    );
  }

  /** Opens (or creates) `dataDir/bigquery.duckdb`; only one process may hold it. */
  static async open(dataDir: string, projectId: string): Promise<BigQueryEngine> {
    const store = await DuckStore.open(join(dataDir, 'bigquery.duckdb'));
    const catalog = await Catalog.load(store, projectId);
    return new BigQueryEngine(store, catalog, projectId);
  }

  close(): Promise<void> {
    return this.store.close();
  }

  // Datasets

  async insertDataset(projectId: string, body: Body): Promise<DatasetResource> {
    const reference = (body.datasetReference ?? {}) as Partial<DatasetReference>;
    const datasetId = reference.datasetId ?? '';
    if (!DATASET_ID.test(datasetId)) {
      throw invalidArgument(
        `Invalid dataset ID "${datasetId}". Dataset IDs must be alphanumeric (plus underscores) and must be at most 1024 characters long.`,
      );
    }
    if (/^(main|information_schema|pg_catalog|temp|__bigquery_catalog)$/i.test(datasetId)) {
      // These are DuckDB's own schemas, or the catalog's, in the file behind the local BigQuery.
      throw invalidArgument(
        `Dataset ID "${datasetId}" is reserved by the local BigQuery; choose another name.`,
      );
    }
    const ref = { projectId: reference.projectId ?? projectId, datasetId };
    if (this.catalog.findDataset(ref))
      throw alreadyExists(`Already Exists: Dataset ${datasetKey(ref)}`);
    const time = now();
    const resource: DatasetResource = {
      kind: 'bigquery#dataset',
      id: datasetKey(ref),
      etag: randomUUID(),
      datasetReference: ref,
      location: typeof body.location === 'string' ? body.location : LOCATION,
      creationTime: time,
      lastModifiedTime: time,
      type: 'DEFAULT',
    };
    applyFields(resource, body, DATASET_FIELDS, false);
    await this.store.transaction(async (c) => {
      await c.run(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(this.catalog.duckSchema(ref))}`);
      await this.catalog.saveDataset(c, resource);
    });
    this.catalog.rememberDataset(resource);
    return resource;
  }

  getDataset(ref: DatasetReference): DatasetResource {
    return this.catalog.dataset(ref);
  }

  listDatasets(projectId: string): DatasetResource[] {
    return this.catalog.listDatasets(projectId);
  }

  async patchDataset(
    ref: DatasetReference,
    body: Body,
    replace: boolean,
  ): Promise<DatasetResource> {
    const resource = structuredClone(this.catalog.dataset(ref));
    applyFields(resource, body, DATASET_FIELDS, replace);
    resource.etag = randomUUID();
    resource.lastModifiedTime = now();
    await this.store.exclusive((c) => this.catalog.saveDataset(c, resource));
    this.catalog.rememberDataset(resource);
    return resource;
  }

  async deleteDataset(ref: DatasetReference, deleteContents: boolean): Promise<void> {
    this.catalog.dataset(ref);
    const tables = this.catalog.listTables(ref);
    if (tables.length > 0 && !deleteContents) {
      throw new ApiError(
        'FAILED_PRECONDITION',
        `Dataset ${datasetKey(ref)} is still in use; delete its tables first or pass deleteContents=true.`,
        { reason: 'resourceInUse' },
      );
    }
    await this.store.transaction(async (c) => {
      for (const table of tables) this.tableData.invalidate(table.tableReference);
      await c.run(`DROP SCHEMA IF EXISTS ${quoteIdent(this.catalog.duckSchema(ref))} CASCADE`);
      await this.catalog.forgetDataset(c, ref);
    });
    this.catalog.dropDataset(ref);
  }

  // Tables

  async insertTable(dataset: DatasetReference, body: Body): Promise<TableResource> {
    const reference = (body.tableReference ?? {}) as Partial<TableReference>;
    const ref: TableReference = {
      projectId: reference.projectId ?? dataset.projectId,
      datasetId: reference.datasetId ?? dataset.datasetId,
      tableId: reference.tableId ?? '',
    };
    if (!TABLE_ID.test(ref.tableId)) {
      throw invalidArgument(`Invalid table ID "${ref.tableId}".`);
    }
    for (const unsupported of ['view', 'materializedView', 'externalDataConfiguration']) {
      if (body[unsupported]) {
        throw new ApiError(
          'UNIMPLEMENTED',
          `Tables with ${unsupported} are not supported by the local BigQuery; create a plain table.`,
        );
      }
    }
    this.catalog.dataset(ref);
    if (this.catalog.findTable(ref)) throw alreadyExists(`Already Exists: Table ${tableKey(ref)}`);
    const schema = normalizeSchema(body.schema as never);
    checkPartitioning(schema.fields, body);
    const resource = this.newTable(ref, schema.fields);
    applyFields(resource, body, TABLE_FIELDS, false);
    await this.store.transaction(async (c) => {
      await c.run(`CREATE TABLE ${this.catalog.duckTable(ref)} (${columnDefinitions(schema)})`);
      await this.catalog.saveTable(c, resource);
    });
    this.catalog.rememberTable(resource);
    return resource;
  }

  private newTable(ref: TableReference, fields: TableField[]): TableResource {
    const time = now();
    return {
      kind: 'bigquery#table',
      id: tableKey(ref),
      etag: randomUUID(),
      tableReference: ref,
      schema: { fields },
      type: 'TABLE',
      location: this.catalog.dataset(ref).location,
      creationTime: time,
      lastModifiedTime: time,
    };
  }

  /** A query's destination: (re)created with the result's schema inside the query's transaction. */
  private async replaceTable(
    c: DuckDBConnection,
    ref: TableReference,
    fields: TableField[],
  ): Promise<void> {
    const existing = this.catalog.findTable(ref);
    this.tableData.invalidate(ref);
    if (existing) await c.run(`DROP TABLE IF EXISTS ${this.catalog.duckTable(ref)}`);
    const resource = { ...(existing ?? this.newTable(ref, fields)), schema: { fields } };
    resource.etag = randomUUID();
    resource.lastModifiedTime = now();
    await c.run(`CREATE TABLE ${this.catalog.duckTable(ref)} (${columnDefinitions({ fields })})`);
    await this.catalog.saveTable(c, resource);
    this.catalog.rememberTable(resource);
  }

  /** The table resource with its current row count, as tables.get answers. */
  async getTable(ref: TableReference): Promise<TableResource> {
    const resource = this.catalog.table(ref);
    const numRows = await this.tableData.countRows(ref);
    return { ...resource, numRows: String(numRows), numBytes: '0', numLongTermBytes: '0' };
  }

  listTables(ref: DatasetReference): TableResource[] {
    return this.catalog.listTables(ref);
  }

  async patchTable(ref: TableReference, body: Body, replace: boolean): Promise<TableResource> {
    const current = this.catalog.table(ref);
    const resource = structuredClone(current);
    const alters: string[] = [];
    if (body.schema) {
      const next = normalizeSchema(body.schema as never);
      const table = this.catalog.duckTable(ref);
      for (const field of schemaChange(current.schema.fields, next.fields)) {
        alters.push(`ALTER TABLE ${table} ADD COLUMN ${columnDefinition(field)}`);
      }
      for (const field of current.schema.fields) {
        if (field.mode === 'REQUIRED' && findField(next.fields, field.name)?.mode === 'NULLABLE') {
          alters.push(`ALTER TABLE ${table} ALTER COLUMN ${quoteIdent(field.name)} DROP NOT NULL`);
        }
      }
      resource.schema = next;
    } else if (replace) {
      throw invalidArgument('tables.update needs the whole table resource, schema included.');
    }
    checkPartitioning(resource.schema.fields, body);
    applyFields(resource, body, TABLE_FIELDS, replace);
    resource.etag = randomUUID();
    resource.lastModifiedTime = now();
    await this.store.transaction(async (c) => {
      this.tableData.invalidate(ref);
      for (const statement of alters) await c.run(statement);
      await this.catalog.saveTable(c, resource);
    });
    this.catalog.rememberTable(resource);
    return this.getTable(ref);
  }

  async deleteTable(ref: TableReference): Promise<void> {
    this.catalog.table(ref);
    await this.store.transaction(async (c) => {
      this.tableData.invalidate(ref);
      await c.run(`DROP TABLE IF EXISTS ${this.catalog.duckTable(ref)}`);
      await this.catalog.forgetTable(c, ref);
    });
    this.catalog.dropTable(ref);
  }

  // In-process helpers for other local services

  /** Rows in a table, or NOT_FOUND. */
  countRows(datasetId: string, tableId: string, projectId = this.projectId): Promise<number> {
    return this.tableData.countRows({ projectId, datasetId, tableId });
  }

  /** Every dataset and table with its row count, for `local status`. */
  async summary(): Promise<{ table: TableReference; rows: number }[]> {
    const tables = this.catalog.allTables().map((t) => t.tableReference);
    const out: { table: TableReference; rows: number }[] = [];
    for (const table of tables) out.push({ table, rows: await this.tableData.countRows(table) });
    return out;
  }
}

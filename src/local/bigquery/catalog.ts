import type { DuckDBConnection } from '@duckdb/node-api';

import type { ApiError } from '../http.js';
import { notFound } from '../http.js';
import type { TableSchema } from './schema.js';
import { quoteIdent } from './schema.js';
import type { DuckStore } from './store.js';

/**
 * Dataset and table resources as the API returns them, kept in memory and stored in the DuckDB
 * file itself (schema `__bigquery_catalog`), so a table's metadata and its data are written in
 * the same transaction and survive a restart together.
 */

export interface DatasetReference {
  projectId: string;
  datasetId: string;
}

export interface TableReference extends DatasetReference {
  tableId: string;
}

export interface DatasetResource {
  kind: 'bigquery#dataset';
  id: string;
  etag: string;
  datasetReference: DatasetReference;
  location: string;
  creationTime: string;
  lastModifiedTime: string;
  [field: string]: unknown;
}

export interface TableResource {
  kind: 'bigquery#table';
  id: string;
  etag: string;
  tableReference: TableReference;
  schema: TableSchema;
  type: 'TABLE';
  location: string;
  creationTime: string;
  lastModifiedTime: string;
  [field: string]: unknown;
}

interface DatasetEntry {
  resource: DatasetResource;
  tables: Map<string, TableResource>;
}

const CATALOG = '__bigquery_catalog';

export function datasetKey(ref: DatasetReference): string {
  return `${ref.projectId}:${ref.datasetId}`;
}

export function tableKey(ref: TableReference): string {
  return `${ref.projectId}:${ref.datasetId}.${ref.tableId}`;
}

export function datasetNotFound(ref: DatasetReference): ApiError {
  return notFound(`Not found: Dataset ${datasetKey(ref)}`);
}

export function tableNotFound(ref: TableReference): ApiError {
  return notFound(`Not found: Table ${tableKey(ref)}`);
}

export class Catalog {
  private readonly datasets = new Map<string, DatasetEntry>();

  private constructor(private readonly defaultProjectId: string) {}

  static async load(store: DuckStore, defaultProjectId: string): Promise<Catalog> {
    const catalog = new Catalog(defaultProjectId);
    await store.exclusive(async (c) => {
      await c.run(`CREATE SCHEMA IF NOT EXISTS ${CATALOG}`);
      await c.run(
        `CREATE TABLE IF NOT EXISTS ${CATALOG}.datasets (key VARCHAR PRIMARY KEY, resource VARCHAR)`,
      );
      await c.run(
        `CREATE TABLE IF NOT EXISTS ${CATALOG}.tables (key VARCHAR PRIMARY KEY, dataset VARCHAR, resource VARCHAR)`,
      );
      const datasets = await c.runAndReadAll(`SELECT resource FROM ${CATALOG}.datasets`);
      for (const [text] of datasets.getRows()) {
        const resource = JSON.parse(String(text)) as DatasetResource;
        catalog.datasets.set(datasetKey(resource.datasetReference), {
          resource,
          tables: new Map(),
        });
      }
      const tables = await c.runAndReadAll(`SELECT resource FROM ${CATALOG}.tables`);
      for (const [text] of tables.getRows()) {
        const resource = JSON.parse(String(text)) as TableResource;
        const entry = catalog.datasets.get(datasetKey(resource.tableReference));
        entry?.tables.set(resource.tableReference.tableId, resource);
      }
    });
    return catalog;
  }

  /** The DuckDB schema of a dataset: its id in the default project, `project.dataset` else. */
  duckSchema(ref: DatasetReference): string {
    return ref.projectId === this.defaultProjectId
      ? ref.datasetId
      : `${ref.projectId}.${ref.datasetId}`;
  }

  /** The quoted DuckDB name of a table. */
  duckTable(ref: TableReference): string {
    return `${quoteIdent(this.duckSchema(ref))}.${quoteIdent(ref.tableId)}`;
  }

  findDataset(ref: DatasetReference): DatasetResource | undefined {
    return this.datasets.get(datasetKey(ref))?.resource;
  }

  dataset(ref: DatasetReference): DatasetResource {
    const found = this.findDataset(ref);
    if (!found) throw datasetNotFound(ref);
    return found;
  }

  listDatasets(projectId: string): DatasetResource[] {
    return [...this.datasets.values()]
      .map((entry) => entry.resource)
      .filter((resource) => resource.datasetReference.projectId === projectId)
      .sort((a, b) => a.datasetReference.datasetId.localeCompare(b.datasetReference.datasetId));
  }

  findTable(ref: TableReference): TableResource | undefined {
    return this.datasets.get(datasetKey(ref))?.tables.get(ref.tableId);
  }

  table(ref: TableReference): TableResource {
    this.dataset(ref);
    const found = this.findTable(ref);
    if (!found) throw tableNotFound(ref);
    return found;
  }

  listTables(ref: DatasetReference): TableResource[] {
    this.dataset(ref);
    const tables = this.datasets.get(datasetKey(ref))?.tables.values() ?? [];
    return [...tables].sort((a, b) =>
      a.tableReference.tableId.localeCompare(b.tableReference.tableId),
    );
  }

  allTables(): TableResource[] {
    return [...this.datasets.values()].flatMap((entry) => [...entry.tables.values()]);
  }

  /** Stores a dataset inside the caller's transaction; call `remember` after it commits. */
  async saveDataset(connection: DuckDBConnection, resource: DatasetResource): Promise<void> {
    await connection.run(`INSERT OR REPLACE INTO ${CATALOG}.datasets VALUES ($1, $2)`, [
      datasetKey(resource.datasetReference),
      JSON.stringify(resource),
    ]);
  }

  async saveTable(connection: DuckDBConnection, resource: TableResource): Promise<void> {
    const ref = resource.tableReference;
    await connection.run(`INSERT OR REPLACE INTO ${CATALOG}.tables VALUES ($1, $2, $3)`, [
      tableKey(ref),
      datasetKey(ref),
      JSON.stringify(resource),
    ]);
  }

  async forgetDataset(connection: DuckDBConnection, ref: DatasetReference): Promise<void> {
    await connection.run(`DELETE FROM ${CATALOG}.tables WHERE dataset = $1`, [datasetKey(ref)]);
    await connection.run(`DELETE FROM ${CATALOG}.datasets WHERE key = $1`, [datasetKey(ref)]);
  }

  async forgetTable(connection: DuckDBConnection, ref: TableReference): Promise<void> {
    await connection.run(`DELETE FROM ${CATALOG}.tables WHERE key = $1`, [tableKey(ref)]);
  }

  rememberDataset(resource: DatasetResource): void {
    const key = datasetKey(resource.datasetReference);
    const tables = this.datasets.get(key)?.tables ?? new Map<string, TableResource>();
    this.datasets.set(key, { resource, tables });
  }

  rememberTable(resource: TableResource): void {
    this.datasets
      .get(datasetKey(resource.tableReference))
      ?.tables.set(resource.tableReference.tableId, resource);
  }

  dropDataset(ref: DatasetReference): void {
    this.datasets.delete(datasetKey(ref));
  }

  dropTable(ref: TableReference): void {
    this.datasets.get(datasetKey(ref))?.tables.delete(ref.tableId);
  }
}

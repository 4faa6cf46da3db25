import { join } from 'node:path';

import { errorMessage } from '../../errors.js';
import { ApiError } from '../http.js';
import type { LocalCloud, LocalService, ResourceLine, ServiceStatus } from '../service.js';
import { tableKey } from './catalog.js';
import { BigQueryEngine } from './engine.js';
import { bigqueryRoutes } from './routes.js';

/**
 * The local BigQuery as a service of the local cloud: the v2 REST routes over one DuckDB file in
 * `dataDir/bigquery/`, and `engine` for other services in the same process.
 */

export const BIGQUERY_SERVICE = 'bigquery';

export { BigQueryEngine } from './engine.js';

export class BigQueryService implements LocalService {
  readonly name = BIGQUERY_SERVICE;
  readonly routes;
  private opened: BigQueryEngine | undefined;
  private failure: string | undefined;

  constructor(private readonly cloud: LocalCloud) {
    this.routes = bigqueryRoutes(() => this.engine);
  }

  /** The engine, for in-process callers; UNAVAILABLE until the service has started. */
  get engine(): BigQueryEngine {
    if (!this.opened) {
      throw new ApiError(
        'UNAVAILABLE',
        'The local BigQuery is not running yet; start the local cloud first.',
      );
    }
    return this.opened;
  }

  async start(): Promise<void> {
    const dir = join(this.cloud.dataDir, BIGQUERY_SERVICE);
    try {
      this.opened = await BigQueryEngine.open(dir, this.cloud.projectId);
    } catch (error) {
      this.failure = errorMessage(error);
      const hint = /lock/i.test(this.failure)
        ? ' Another process holds it: stop the other local cloud that uses this directory.'
        : '';
      throw new Error(
        `The local BigQuery could not open ${dir}/bigquery.duckdb: ${this.failure}.${hint}`,
        {
          cause: error,
        },
      );
    }
  }

  async stop(): Promise<void> {
    const engine = this.opened;
    this.opened = undefined;
    try {
      await engine?.close();
    } catch (error) {
      this.cloud.log.warn('bigquery: closing DuckDB failed: %s', errorMessage(error));
    }
  }

  async status(): Promise<ServiceStatus> {
    const endpoint = `${this.cloud.endpoint}/bigquery/v2`;
    if (!this.opened) {
      return {
        name: this.name,
        endpoint,
        state: this.failure ? 'failed' : 'stopped',
        ...(this.failure ? { detail: this.failure } : {}),
        resources: [],
      };
    }
    const engine = this.opened;
    const resources: ResourceLine[] = [];
    const summary = await engine.summary();
    for (const dataset of engine.catalog.listDatasets(this.cloud.projectId)) {
      const ref = dataset.datasetReference;
      resources.push({ kind: 'dataset', name: `${ref.projectId}:${ref.datasetId}` });
      for (const { table, rows } of summary) {
        if (table.datasetId !== ref.datasetId || table.projectId !== ref.projectId) continue;
        resources.push({ kind: 'table', name: tableKey(table), detail: `${rows} rows` });
      }
    }
    return { name: this.name, endpoint, state: 'running', resources };
  }
}

export const bigqueryServiceFactory = (cloud: LocalCloud): BigQueryService =>
  new BigQueryService(cloud);

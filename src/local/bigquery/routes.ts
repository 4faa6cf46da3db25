import type { LocalRequest, Reply, Route } from '../http.js';
import { ApiError, invalidArgument } from '../http.js';
import type { DatasetReference, TableReference } from './catalog.js';
import { timestampFormat } from './cells.js';
import type { BigQueryEngine } from './engine.js';
import type { JobResource, ResultPage } from './jobs.js';
import type { InsertAllRequest } from './tabledata.js';

/**
 * The BigQuery v2 REST surface the official Node.js client uses, under `/bigquery/v2` (with
 * `apiEndpoint`) or at the root (with `BIGQUERY_EMULATOR_HOST`, which the client uses as its
 * base URL as it is).
 */

const PREFIX = String.raw`^(?:/bigquery/v2)?/projects/(?<projectId>[^/]+)`;
const DATASET = String.raw`${PREFIX}/datasets/(?<datasetId>[^/]+)`;
const TABLE = String.raw`${DATASET}/tables/(?<tableId>[^/]+)`;
const JOB = String.raw`${PREFIX}/jobs/(?<jobId>[^/]+)`;
const DEFAULT_PAGE = 100_000;

type Handler = (request: LocalRequest, engine: BigQueryEngine) => Promise<Reply> | Reply;

function datasetRef(request: LocalRequest): DatasetReference {
  return { projectId: request.params.projectId!, datasetId: request.params.datasetId! };
}

function tableRef(request: LocalRequest): TableReference {
  return { ...datasetRef(request), tableId: request.params.tableId! };
}

function numberParam(request: LocalRequest, name: string): number | undefined {
  const text = request.query.get(name);
  if (text === null || text === '') return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) {
    throw invalidArgument(`Invalid value for ${name}: ${text} is not a non-negative integer.`);
  }
  return value;
}

/** A list page: the page token is the index of the first item of the next page. */
function page<T>(items: T[], request: LocalRequest): { items: T[]; nextPageToken?: string } {
  const start = Number(request.query.get('pageToken') ?? 0) || 0;
  const size = numberParam(request, 'maxResults') ?? 1000;
  const slice = items.slice(start, start + size);
  const next = start + slice.length;
  return next < items.length ? { items: slice, nextPageToken: String(next) } : { items: slice };
}

function formatOf(request: LocalRequest) {
  return timestampFormat({
    useInt64Timestamp: request.query.get('formatOptions.useInt64Timestamp') ?? undefined,
    timestampOutputFormat: request.query.get('formatOptions.timestampOutputFormat') ?? undefined,
  });
}

function resultBody(kind: string, job: JobResource, result: ResultPage): Record<string, unknown> {
  return {
    kind,
    etag: job.etag,
    jobReference: job.jobReference,
    schema: { fields: result.fields },
    totalRows: String(result.totalRows),
    ...(result.rows.length > 0 ? { rows: result.rows } : {}),
    ...(result.pageToken ? { pageToken: result.pageToken } : {}),
    ...(result.affectedRows !== undefined
      ? { numDmlAffectedRows: String(result.affectedRows) }
      : {}),
    totalBytesProcessed: '0',
    jobComplete: true,
    cacheHit: false,
  };
}

const handlers: [Route['method'], string, Handler][] = [
  // Datasets
  [
    'POST',
    `${PREFIX}/datasets`,
    async (r, e) => ({
      json: await e.insertDataset(r.params.projectId!, r.json()),
    }),
  ],
  [
    'GET',
    `${PREFIX}/datasets`,
    (r, e) => {
      const { items, nextPageToken } = page(e.listDatasets(r.params.projectId!), r);
      return {
        json: {
          kind: 'bigquery#datasetList',
          datasets: items.map((d) => ({
            kind: d.kind,
            id: d.id,
            datasetReference: d.datasetReference,
            location: d.location,
            ...(d.labels ? { labels: d.labels } : {}),
            ...(d.friendlyName ? { friendlyName: d.friendlyName } : {}),
          })),
          ...(nextPageToken ? { nextPageToken } : {}),
        },
      };
    },
  ],
  ['GET', `${DATASET}$`, (r, e) => ({ json: e.getDataset(datasetRef(r)) })],
  [
    'PATCH',
    `${DATASET}$`,
    async (r, e) => ({
      json: await e.patchDataset(datasetRef(r), r.json(), false),
    }),
  ],
  [
    'PUT',
    `${DATASET}$`,
    async (r, e) => ({
      json: await e.patchDataset(datasetRef(r), r.json(), true),
    }),
  ],
  [
    'DELETE',
    `${DATASET}$`,
    async (r, e) => {
      await e.deleteDataset(datasetRef(r), r.query.get('deleteContents') === 'true');
      return { status: 204 };
    },
  ],
  // Tables
  [
    'POST',
    `${DATASET}/tables$`,
    async (r, e) => ({
      json: await e.insertTable(datasetRef(r), r.json()),
    }),
  ],
  [
    'GET',
    `${DATASET}/tables$`,
    (r, e) => {
      const tables = e.listTables(datasetRef(r));
      const { items, nextPageToken } = page(tables, r);
      return {
        json: {
          kind: 'bigquery#tableList',
          tables: items.map((t) => ({
            kind: t.kind,
            id: t.id,
            tableReference: t.tableReference,
            type: t.type,
            creationTime: t.creationTime,
            ...(t.timePartitioning ? { timePartitioning: t.timePartitioning } : {}),
            ...(t.labels ? { labels: t.labels } : {}),
          })),
          totalItems: tables.length,
          ...(nextPageToken ? { nextPageToken } : {}),
        },
      };
    },
  ],
  ['GET', `${TABLE}$`, async (r, e) => ({ json: await e.getTable(tableRef(r)) })],
  [
    'PATCH',
    `${TABLE}$`,
    async (r, e) => ({
      json: await e.patchTable(tableRef(r), r.json(), false),
    }),
  ],
  ['PUT', `${TABLE}$`, async (r, e) => ({ json: await e.patchTable(tableRef(r), r.json(), true) })],
  [
    'DELETE',
    `${TABLE}$`,
    async (r, e) => {
      await e.deleteTable(tableRef(r));
      return { status: 204 };
    },
  ],
  // Table data
  [
    'POST',
    `${TABLE}/insertAll$`,
    async (r, e) => {
      const result = await e.tableData.insertAll(tableRef(r), r.json<InsertAllRequest>());
      return {
        json: {
          kind: 'bigquery#tableDataInsertAllResponse',
          ...(result.insertErrors.length > 0 ? { insertErrors: result.insertErrors } : {}),
        },
      };
    },
  ],
  [
    'GET',
    `${TABLE}/data$`,
    async (r, e) => {
      const token = r.query.get('pageToken');
      const startIndex = token ? Number(token) : (numberParam(r, 'startIndex') ?? 0);
      const selected = r.query.get('selectedFields');
      const result = await e.tableData.list(
        tableRef(r),
        {
          startIndex,
          maxResults: numberParam(r, 'maxResults') ?? DEFAULT_PAGE,
          ...(selected ? { selectedFields: selected.split(',') } : {}),
        },
        formatOf(r),
      );
      const next = startIndex + result.rows.length;
      return {
        json: {
          kind: 'bigquery#tableDataList',
          totalRows: String(result.totalRows),
          ...(result.rows.length > 0 ? { rows: result.rows } : {}),
          ...(next < result.totalRows && result.rows.length > 0 ? { pageToken: String(next) } : {}),
        },
      };
    },
  ],
  // Jobs
  [
    'POST',
    `${PREFIX}/jobs$`,
    async (r, e) => ({
      json: await e.jobs.insert(r.params.projectId!, r.json()),
    }),
  ],
  [
    'GET',
    `${PREFIX}/jobs$`,
    (r, e) => {
      const { items, nextPageToken } = page(e.jobs.list(r.params.projectId!), r);
      return {
        json: {
          kind: 'bigquery#jobList',
          jobs: items.map((j) => ({ ...j, state: j.status.state })),
          ...(nextPageToken ? { nextPageToken } : {}),
        },
      };
    },
  ],
  ['GET', `${JOB}$`, (r, e) => ({ json: e.jobs.get(r.params.projectId!, r.params.jobId!) })],
  [
    'POST',
    `${JOB}/cancel$`,
    (r, e) => ({
      // Every job is already DONE: cancelling it changes nothing, as on BigQuery.
      json: {
        kind: 'bigquery#jobCancelResponse',
        job: e.jobs.get(r.params.projectId!, r.params.jobId!),
      },
    }),
  ],
  [
    'DELETE',
    `${JOB}/delete$`,
    (r, e) => {
      e.jobs.delete(r.params.projectId!, r.params.jobId!);
      return { status: 204 };
    },
  ],
  [
    'POST',
    `${PREFIX}/queries$`,
    async (r, e) => {
      const body = r.json<Record<string, unknown>>();
      const formatOptions = (body.formatOptions ?? {}) as Record<string, unknown>;
      const { job, page: result } = await e.jobs.query(
        r.params.projectId!,
        body,
        timestampFormat(formatOptions),
      );
      return { json: resultBody('bigquery#queryResponse', job, result) };
    },
  ],
  [
    'GET',
    `${PREFIX}/queries/(?<jobId>[^/]+)$`,
    async (r, e) => {
      const { job, page: result } = await e.jobs.results(
        r.params.projectId!,
        r.params.jobId!,
        {
          ...(numberParam(r, 'maxResults') !== undefined
            ? { maxResults: numberParam(r, 'maxResults') }
            : {}),
          ...(r.query.get('pageToken') ? { pageToken: r.query.get('pageToken')! } : {}),
          ...(numberParam(r, 'startIndex') !== undefined
            ? { startIndex: numberParam(r, 'startIndex') }
            : {}),
        },
        formatOf(r),
      );
      return { json: resultBody('bigquery#getQueryResultsResponse', job, result) };
    },
  ],
];

export function bigqueryRoutes(engine: () => BigQueryEngine): Route[] {
  const routes: Route[] = handlers.map(([method, path, handler]) => ({
    method,
    path: new RegExp(path.endsWith('$') ? path : `${path}$`),
    handler: async (request) => handler(request, engine()),
  }));
  // Load jobs from a file (table.load, createWriteStream) upload here; they are not emulated.
  routes.push({
    method: 'POST',
    path: /^\/upload\/bigquery\/v2\/projects\/[^/]+\/jobs$/,
    stream: true,
    handler: () =>
      Promise.reject(
        new ApiError(
          'UNIMPLEMENTED',
          'Load jobs are not supported by the local BigQuery; stream the rows with tabledata.insertAll (table.insert) instead.',
        ),
      ),
  });
  return routes;
}

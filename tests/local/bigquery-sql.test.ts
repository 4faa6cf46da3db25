import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { BigQuery, Dataset } from '@google-cloud/bigquery';
import { BigQueryTimestamp } from '@google-cloud/bigquery';

import { annotationSchema } from '../../src/part2/schema.js';
import type { FrameData } from '../../src/pipelines/video-analytics/rows.js';
import type { LocalBigQuery } from './bigquery-fixtures.js';
import type { JobMeta, TableMeta } from './bigquery-fixtures.js';
import { metadataOf, PROJECT, removeDir, startBigQuery, tempDir } from './bigquery-fixtures.js';

/**
 * BigQuery Standard SQL on the local BigQuery: the lab's Part 2 queries over the object-tracking
 * table, UNNEST with paging through query jobs, the functions SQL.md lists, query parameters,
 * destination tables, DML, and the errors for what is not supported.
 */

const TABLE = `\`${PROJECT}.video_analytics.object_tracking_analysis\``;

function frames(count: number, base: number): FrameData[] {
  return Array.from({ length: count }, (_, i) => ({
    processing_timestamp: '2026-12-03 10:00:00',
    // Written out of order on purpose: the query must order them.
    timeOffset: ((count - i) * 0.2).toFixed(1),
    confidence: Number((base + i / 100).toFixed(2)),
    left: Number((0.1 + i / 100).toFixed(2)),
    top: 0.2,
    right: Number((0.4 + i / 100).toFixed(2)),
    bottom: 0.8,
  }));
}

describe('local BigQuery SQL', () => {
  const dir = tempDir();
  let local: LocalBigQuery;
  let bigquery: BigQuery;
  let dataset: Dataset;

  const query = async (sql: string, options: Record<string, unknown> = {}) =>
    (await bigquery.query({ query: sql, ...options }))[0] as Record<string, unknown>[];

  beforeAll(async () => {
    local = await startBigQuery(dir);
    bigquery = local.bigquery;
    [dataset] = await bigquery.createDataset('video_analytics');
    const [table] = await dataset.createTable('object_tracking_analysis', {
      schema: { fields: annotationSchema },
    });
    await table.insert([
      { file_name: 'gs://p_videos/cat.mp4', entity: 'cat', frame_data: frames(3, 0.9) },
      { file_name: 'gs://p_videos/cat.mp4', entity: 'person', frame_data: frames(2, 0.6) },
      { file_name: 'gs://p_videos/street.mov', entity: 'person', frame_data: frames(4, 0.92) },
      { file_name: 'gs://p_videos/street.mov', entity: 'window', frame_data: [] },
    ]);
  });

  afterAll(async () => {
    await local?.close();
    removeDir(dir);
  });

  it('finds files and entities matching a pattern', async () => {
    const rows = await query(
      `SELECT file_name, entity FROM ${TABLE} WHERE file_name LIKE "%cat%" ORDER BY entity`,
    );
    expect(rows).toEqual([
      { file_name: 'gs://p_videos/cat.mp4', entity: 'cat' },
      { file_name: 'gs://p_videos/cat.mp4', entity: 'person' },
    ]);
  });

  it('computes the highest confidence per file and entity over UNNEST', async () => {
    const rows = await query(
      `SELECT file_name, entity, MAX(frame.confidence) AS max_confidence FROM ${TABLE}, ` +
        'UNNEST(frame_data) AS frame GROUP BY file_name, entity ORDER BY file_name, entity',
    );
    expect(rows).toEqual([
      { file_name: 'gs://p_videos/cat.mp4', entity: 'cat', max_confidence: 0.92 },
      { file_name: 'gs://p_videos/cat.mp4', entity: 'person', max_confidence: 0.61 },
      { file_name: 'gs://p_videos/street.mov', entity: 'person', max_confidence: 0.95 },
    ]);
  });

  it('lists per-frame boxes ordered by timeOffset with backticked left and right', async () => {
    const rows = await query(
      'SELECT entity, frame.timeOffset, frame.confidence, frame.`left`, frame.top, ' +
        `frame.\`right\`, frame.bottom FROM ${TABLE}, UNNEST(frame_data) AS frame ` +
        "WHERE file_name LIKE '%street%' AND entity = 'person' ORDER BY frame.timeOffset",
    );
    expect(rows.map((r) => r.timeOffset)).toEqual(['0.2', '0.4', '0.6', '0.8']);
    expect(rows[0]).toEqual({
      entity: 'person',
      timeOffset: '0.2',
      confidence: 0.95,
      left: 0.13,
      top: 0.2,
      right: 0.43,
      bottom: 0.8,
    });
  });

  it('pages a query job with UNNEST through getQueryResults', async () => {
    const [job] = await bigquery.createQueryJob({
      query:
        `SELECT entity, frame.timeOffset AS t FROM ${TABLE}, UNNEST(frame_data) AS frame ` +
        'ORDER BY entity, t',
    });
    const [first, next, response] = await job.getQueryResults({
      maxResults: 4,
      autoPaginate: false,
    });
    expect(response?.totalRows).toBe('9');
    expect(first).toHaveLength(4);
    expect(next).toMatchObject({ pageToken: '4' });
    const [second, third] = await job.getQueryResults(next!);
    expect(second).toHaveLength(4);
    const [last, none] = await job.getQueryResults(third!);
    expect(last).toHaveLength(1);
    expect(none).toBeNull();
    const [all] = await job.getQueryResults();
    expect(all).toEqual([
      ...(first as unknown[]),
      ...(second as unknown[]),
      ...(last as unknown[]),
    ]);
    const metadata = await metadataOf<JobMeta>(job);
    expect(metadata.status.state).toBe('DONE');
    expect(metadata.statistics.query.statementType).toBe('SELECT');
  });

  it('supports UNNEST WITH OFFSET, ARRAY_AGG with ORDER BY and LIMIT, COUNTIF', async () => {
    const offsets = await query(
      `SELECT f.timeOffset, pos FROM ${TABLE}, UNNEST(frame_data) AS f WITH OFFSET AS pos ` +
        "WHERE entity = 'cat' ORDER BY pos",
    );
    expect(offsets).toEqual([
      { timeOffset: '0.6', pos: 0 },
      { timeOffset: '0.4', pos: 1 },
      { timeOffset: '0.2', pos: 2 },
    ]);
    const aggregates = await query(
      'SELECT entity, ARRAY_AGG(f.confidence ORDER BY f.confidence DESC LIMIT 2) AS top, ' +
        'COUNTIF(f.confidence >= 0.9) AS confident, APPROX_COUNT_DISTINCT(file_name) AS files ' +
        `FROM ${TABLE}, UNNEST(frame_data) AS f GROUP BY entity ORDER BY entity`,
    );
    expect(aggregates).toEqual([
      { entity: 'cat', top: [0.92, 0.91], confident: 3, files: 1 },
      { entity: 'person', top: [0.95, 0.94], confident: 4, files: 2 },
    ]);
  });

  it('returns typed values: timestamps, dates, numerics, structs and arrays', async () => {
    const [row] = await query(
      "SELECT PARSE_TIMESTAMP('%Y-%m-%d %H:%M:%S', '2020-11-16 22:59:59') AS parsed, " +
        "TIMESTAMP_TRUNC(TIMESTAMP '2020-11-16 22:59:59', HOUR) AS hour, " +
        "TIMESTAMP_DIFF(TIMESTAMP '2020-11-16 23:00:00', TIMESTAMP '2020-11-16 22:00:01', HOUR) AS diff, " +
        "FORMAT_TIMESTAMP('%F %T', TIMESTAMP '2020-11-16 22:59:59+01:00') AS formatted, " +
        "EXTRACT(DAYOFWEEK FROM DATE '2020-11-15') AS dow, DATE_ADD(DATE '2020-01-31', INTERVAL 1 DAY) AS day, " +
        "DATETIME '2020-01-02 03:04:05' AS civil, JSON_VALUE('{\"a\": \"x\"}', '$.a') AS json_value, " +
        "SAFE_CAST('x' AS INT64) AS safe, STRUCT(1 AS a, 'b' AS b) AS s, [1, 2, 3] AS list, " +
        "CAST('1.25' AS NUMERIC) AS n, REGEXP_CONTAINS('abc', r'b') AS found, 7 / 2 AS ratio, " +
        'CURRENT_TIMESTAMP() IS NOT NULL AS now',
    );
    expect(row!.parsed).toBeInstanceOf(BigQueryTimestamp);
    expect((row!.parsed as BigQueryTimestamp).value).toBe('2020-11-16T22:59:59.000Z');
    expect((row!.hour as BigQueryTimestamp).value).toBe('2020-11-16T22:00:00.000Z');
    expect(row).toMatchObject({
      diff: 0,
      formatted: '2020-11-16 21:59:59',
      dow: 1,
      day: { value: '2020-02-01' },
      civil: { value: '2020-01-02T03:04:05' },
      json_value: 'x',
      safe: null,
      s: { a: 1, b: 'b' },
      list: [1, 2, 3],
      found: true,
      ratio: 3.5,
      now: true,
    });
    expect(String(row!.n)).toBe('1.25');
  });

  it('binds named and positional query parameters', async () => {
    const named = await query(
      `SELECT entity FROM ${TABLE} WHERE file_name = @file AND entity IN UNNEST(@entities) ORDER BY entity`,
      { params: { file: 'gs://p_videos/street.mov', entities: ['person', 'window', 'dog'] } },
    );
    expect(named).toEqual([{ entity: 'person' }, { entity: 'window' }]);
    const positional = await query('SELECT ? AS a, ? + 1 AS b, ? AS c', {
      params: ['x', 41, bigquery.timestamp('2020-01-01T00:00:00Z')],
    });
    expect(positional[0]).toMatchObject({ a: 'x', b: 42 });
    expect((positional[0]!.c as BigQueryTimestamp).value).toBe('2020-01-01T00:00:00.000Z');
  });

  it('writes a query into a destination table and runs DML', async () => {
    const [job] = await bigquery.createQueryJob({
      query: `SELECT entity, COUNT(*) AS n FROM ${TABLE} GROUP BY entity`,
      destination: dataset.table('entity_counts'),
    });
    const [rows] = await job.getQueryResults();
    expect(rows).toHaveLength(3);
    const metadata = await metadataOf<TableMeta>(dataset.table('entity_counts'));
    expect(metadata.schema.fields).toEqual([
      { name: 'entity', type: 'STRING', mode: 'NULLABLE' },
      { name: 'n', type: 'INTEGER', mode: 'NULLABLE' },
    ]);
    const [deleteJob] = await bigquery.createQueryJob({
      query: "DELETE FROM video_analytics.entity_counts WHERE entity = 'window'",
    });
    const deleted = await metadataOf<JobMeta>(deleteJob);
    expect(deleted.statistics.query.numDmlAffectedRows).toBe('1');
    const counts = await query('SELECT SUM(n) AS total FROM video_analytics.entity_counts');
    expect(counts).toEqual([{ total: 3 }]);
  });

  it('answers a dry run with the result schema and no job rows', async () => {
    const [job] = await bigquery.createQueryJob({
      query: `SELECT file_name, ARRAY_LENGTH(frame_data) AS frames FROM ${TABLE}`,
      dryRun: true,
    });
    expect((job.metadata as JobMeta).statistics.query.schema?.fields).toEqual([
      { name: 'file_name', type: 'STRING', mode: 'NULLABLE' },
      { name: 'frames', type: 'INTEGER', mode: 'NULLABLE' },
    ]);
  });

  it('refuses unsupported SQL with invalidQuery, naming the construct', async () => {
    await expect(query('CREATE TABLE video_analytics.t2 (a INT64)')).rejects.toMatchObject({
      code: 400,
      errors: [expect.objectContaining({ reason: 'invalidQuery' })],
      message: expect.stringContaining('CREATE TABLE is not supported'),
    });
    await expect(query('SELECT 1; SELECT 2')).rejects.toMatchObject({
      code: 400,
      message: expect.stringContaining('Multi-statement'),
    });
    await expect(query("SELECT FORMAT_TIMESTAMP('%Q', CURRENT_TIMESTAMP())")).rejects.toMatchObject(
      { code: 400, message: expect.stringContaining('%Q in FORMAT_TIMESTAMP') },
    );
    await expect(
      query('SELECT no_such_column FROM video_analytics.object_tracking_analysis'),
    ).rejects.toMatchObject({
      code: 400,
      errors: [expect.objectContaining({ reason: 'invalidQuery' })],
    });
    await expect(query('SELECT * FROM object_tracking_analysis')).rejects.toMatchObject({
      code: 400,
      message: expect.stringContaining('missing dataset'),
    });
    const [job] = await bigquery
      .createQueryJob({ query: 'SELECT * FROM video_analytics.missing' })
      .catch((error: { code?: number; errors?: { reason: string }[] }) => {
        expect(error.errors?.[0]?.reason).toBe('notFound');
        return [undefined];
      });
    expect(job).toBeUndefined();
  });
});

describe('local BigQuery column types', () => {
  const dir = tempDir();
  let local: LocalBigQuery;

  beforeAll(async () => {
    local = await startBigQuery(dir);
  });

  afterAll(async () => {
    await local?.close();
    removeDir(dir);
  });

  it('stores and returns every scalar type, BYTES nested in a repeated record included', async () => {
    const [dataset] = await local.bigquery.createDataset('types');
    const [table] = await dataset.createTable('all_types', {
      schema: {
        fields: [
          { name: 'i', type: 'INT64' },
          { name: 'f', type: 'FLOAT64' },
          { name: 'n', type: 'NUMERIC' },
          { name: 'b', type: 'BOOL' },
          { name: 'bytes', type: 'BYTES' },
          { name: 'ts', type: 'TIMESTAMP' },
          { name: 'd', type: 'DATE' },
          { name: 'dt', type: 'DATETIME' },
          { name: 't', type: 'TIME' },
          { name: 'j', type: 'JSON' },
          {
            name: 'parts',
            type: 'RECORD',
            mode: 'REPEATED',
            fields: [{ name: 'blob', type: 'BYTES' }],
          },
        ],
      },
    });
    await table.insert(
      [
        {
          insertId: 'all',
          json: {
            i: '-42',
            f: 'Infinity',
            n: '123.456789',
            b: 'true',
            bytes: Buffer.from('hi').toString('base64'),
            ts: '2020-11-16T22:59:59.123456+01:00',
            d: '2020-11-16',
            dt: '2020-11-16 22:59:59.5',
            t: '10:11:12',
            j: '{"a":[1,2]}',
            parts: [{ blob: Buffer.from('x').toString('base64') }],
          },
        },
      ],
      { raw: true },
    );
    const [[row]] = (await table.getRows()) as [Record<string, unknown>[]];
    expect(row).toMatchObject({
      i: -42,
      f: Infinity,
      b: true,
      bytes: Buffer.from('hi'),
      ts: { value: '2020-11-16T21:59:59.123456000Z' },
      d: { value: '2020-11-16' },
      dt: { value: '2020-11-16T22:59:59.500000' },
      t: { value: '10:11:12' },
      j: '{"a":[1,2]}',
      parts: [{ blob: Buffer.from('x') }],
    });
    expect(String(row!.n)).toBe('123.456789');
  });

  it('refuses load jobs with a message that names the alternative', async () => {
    const response = await fetch(
      `${local.host.endpoint}/upload/bigquery/v2/projects/${PROJECT}/jobs?uploadType=multipart`,
      { method: 'POST', body: 'x' },
    );
    expect(response.status).toBe(501);
    const body = (await response.json()) as { error: { message: string } };
    expect(body.error.message).toContain('tabledata.insertAll');
  });
});

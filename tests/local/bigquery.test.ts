import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { BigQuery, Dataset, Table } from '@google-cloud/bigquery';
import { BigQueryTimestamp } from '@google-cloud/bigquery';

import type { LocalBigQuery, TableMeta } from './bigquery-fixtures.js';
import {
  eventSchema,
  metadataOf,
  PROJECT,
  removeDir,
  sampleEvents,
  startBigQuery,
  tempDir,
} from './bigquery-fixtures.js';

/**
 * The local BigQuery through the official client: datasets and tables with the lab's nested
 * schema, streaming inserts with BigQuery's per-row errors and insertId de-duplication, table
 * reads, the lab's two Part 1 queries, and a restart that keeps everything.
 */

const TABLE_QUERY = `SELECT event_datetime, event, user_id FROM \`${PROJECT}.retail_dataset.ecommerce_events\``;
const REVENUE_QUERY =
  'SELECT event, COUNT(DISTINCT ecommerce.purchase.transaction_id) AS transactions, ' +
  `SUM(ecommerce.purchase.value) AS revenue FROM \`${PROJECT}.retail_dataset.ecommerce_events\` ` +
  'WHERE event = "purchase" GROUP BY event';

interface InsertAllAnswer {
  kind: string;
  insertErrors?: {
    index: number;
    errors: { reason: string; location: string; message: string }[];
  }[];
}

describe('local BigQuery', () => {
  const dir = tempDir();
  let local: LocalBigQuery;
  let bigquery: BigQuery;
  let dataset: Dataset;
  let table: Table;

  async function insertAll(tableId: string, body: unknown): Promise<InsertAllAnswer> {
    const url = `${local.host.endpoint}/bigquery/v2/projects/${PROJECT}/datasets/retail_dataset/tables/${tableId}/insertAll`;
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(response.status).toBe(200);
    return (await response.json()) as InsertAllAnswer;
  }

  beforeAll(async () => {
    local = await startBigQuery(dir);
    bigquery = local.bigquery;
  });

  afterAll(async () => {
    await local?.close();
    removeDir(dir);
  });

  it('creates the lab dataset and its partitioned table with the nested schema', async () => {
    [dataset] = await bigquery.createDataset('retail_dataset', { location: 'US' });
    [table] = await dataset.createTable('ecommerce_events', {
      schema: { fields: eventSchema },
      timePartitioning: { type: 'DAY', field: 'event_datetime' },
      description: 'Cymbal Direct e-commerce events',
    });
    const metadata = await metadataOf<TableMeta>(table);
    expect(metadata.timePartitioning).toEqual({ type: 'DAY', field: 'event_datetime' });
    expect(metadata.description).toBe('Cymbal Direct e-commerce events');
    expect(metadata.numRows).toBe('0');
    const fields = metadata.schema.fields;
    expect(fields.find((f) => f.name === 'event')?.mode).toBe('REQUIRED');
    const ecommerce = fields.find((f) => f.name === 'ecommerce') as {
      fields: { name: string; mode: string; type: string }[];
    };
    expect(ecommerce.fields.find((f) => f.name === 'items')).toMatchObject({
      type: 'RECORD',
      mode: 'REPEATED',
    });

    const [datasets] = await bigquery.getDatasets();
    expect(datasets.map((d) => d.id)).toEqual(['retail_dataset']);
    const [tables] = await dataset.getTables();
    expect(tables.map((t) => t.id)).toEqual(['ecommerce_events']);
  });

  it('answers BigQuery errors for duplicates and missing resources', async () => {
    await expect(bigquery.createDataset('retail_dataset')).rejects.toMatchObject({
      code: 409,
      message: `Already Exists: Dataset ${PROJECT}:retail_dataset`,
    });
    await expect(
      dataset.createTable('ecommerce_events', { schema: { fields: eventSchema } }),
    ).rejects.toMatchObject({
      code: 409,
      message: `Already Exists: Table ${PROJECT}:retail_dataset.ecommerce_events`,
    });
    await expect(dataset.table('missing').getMetadata()).rejects.toMatchObject({
      code: 404,
      message: `Not found: Table ${PROJECT}:retail_dataset.missing`,
    });
    await expect(bigquery.dataset('nowhere').getMetadata()).rejects.toMatchObject({
      code: 404,
      message: `Not found: Dataset ${PROJECT}:nowhere`,
    });
    const [exists] = await dataset.table('missing').exists();
    expect(exists).toBe(false);
  });

  it('streams the three sample events and answers the lab queries', async () => {
    await table.insert(sampleEvents);
    const [rows] = await bigquery.query(TABLE_QUERY);
    expect(rows).toHaveLength(3);
    const purchase = rows.find((r: { event: string }) => r.event === 'purchase') as {
      event_datetime: BigQueryTimestamp;
      user_id: string;
    };
    expect(purchase.event_datetime).toBeInstanceOf(BigQueryTimestamp);
    expect(purchase.event_datetime.value).toBe('2020-11-16T22:59:59.000Z');
    expect(purchase.user_id).toBe('UID00003');

    const [revenue] = await bigquery.query(REVENUE_QUERY);
    expect(revenue).toEqual([{ event: 'purchase', transactions: 1, revenue: 35.43 }]);
  });

  it('reads rows back with nested records, repeated fields and numeric-string integers', async () => {
    const [rows] = await table.getRows();
    const purchase = rows.find((r: { event: string }) => r.event === 'purchase') as {
      ecommerce: { items: unknown[]; purchase: { items: { item_id: number }[]; currency: string } };
    };
    expect(purchase.ecommerce.items).toEqual([]);
    expect(purchase.ecommerce.purchase.currency).toBe('EUR');
    expect(purchase.ecommerce.purchase.items.map((i) => i.item_id)).toEqual([12345, 67890]);
    const view = rows.find((r: { event: string }) => r.event === 'view_item') as {
      ecommerce: { items: { item_id: number; quantity: number }[]; purchase: unknown };
    };
    expect(view.ecommerce.items[0]).toMatchObject({ item_id: 67890, quantity: 1 });
    expect(view.ecommerce.purchase).toBeNull();
  });

  it('reports bad rows exactly as BigQuery does and stops the valid ones', async () => {
    const answer = await insertAll('ecommerce_events', {
      rows: [
        { insertId: 'a1', json: { event: 'view_item', user_id: 'u1' } },
        { insertId: 'a2', json: { event: 'view_item', user_id: 'u2', colour: 'red' } },
        { insertId: 'a3', json: { event: 'view_item', user_id: 'u3', event_datetime: 'soon' } },
        { insertId: 'a4', json: { event: 'view_item' } },
        {
          insertId: 'a5',
          json: {
            event: 'purchase',
            user_id: 'u5',
            ecommerce: { purchase: { items: [{ item_id: 'twelve' }] } },
          },
        },
      ],
    });
    expect(answer.insertErrors).toEqual([
      { index: 0, errors: [{ reason: 'stopped', location: '', debugInfo: '', message: '' }] },
      {
        index: 1,
        errors: [
          {
            reason: 'invalid',
            location: 'colour',
            debugInfo: '',
            message: 'no such field: colour.',
          },
        ],
      },
      {
        index: 2,
        errors: [
          expect.objectContaining({
            reason: 'invalid',
            location: 'event_datetime',
            message: expect.stringContaining("Could not parse 'soon' as a timestamp"),
          }),
        ],
      },
      {
        index: 3,
        errors: [
          {
            reason: 'invalid',
            location: 'user_id',
            debugInfo: '',
            message: 'Missing required field: user_id.',
          },
        ],
      },
      {
        index: 4,
        errors: [
          expect.objectContaining({
            reason: 'invalid',
            location: 'ecommerce.purchase.items.item_id',
            message: 'Cannot convert value to integer (bad value): twelve',
          }),
        ],
      },
    ]);
    const [rows] = await bigquery.query(TABLE_QUERY);
    expect(rows).toHaveLength(3);
  });

  it('keeps the valid rows with skipInvalidRows and drops unknown fields with ignoreUnknownValues', async () => {
    const skipped = await insertAll('ecommerce_events', {
      skipInvalidRows: true,
      rows: [
        { json: { event: 'page_view', user_id: 'u10', event_datetime: 1605567599 } },
        { json: { event: 'page_view' } },
      ],
    });
    expect(skipped.insertErrors).toEqual([
      { index: 1, errors: [expect.objectContaining({ reason: 'invalid', location: 'user_id' })] },
    ]);
    const ignored = await insertAll('ecommerce_events', {
      ignoreUnknownValues: true,
      rows: [{ json: { event: 'page_view', user_id: 'u11', colour: 'red' } }],
    });
    expect(ignored.insertErrors).toBeUndefined();
    const [rows] = await bigquery.query({
      query:
        'SELECT user_id, event_datetime FROM retail_dataset.ecommerce_events ' +
        "WHERE event = 'page_view' ORDER BY user_id",
    });
    expect(rows.map((r: { user_id: string }) => r.user_id)).toEqual(['u10', 'u11']);
    expect((rows[0] as { event_datetime: BigQueryTimestamp }).event_datetime.value).toBe(
      '2020-11-16T22:59:59.000Z',
    );
  });

  it('drops rows whose insertId was seen within the de-duplication window', async () => {
    const row = (id: string, user: string) => ({
      insertId: id,
      json: { event: 'dedupe', user_id: user },
    });
    await insertAll('ecommerce_events', {
      rows: [row('d1', 'x1'), row('d2', 'x2'), row('d1', 'x1')],
    });
    await insertAll('ecommerce_events', { rows: [row('d2', 'x2'), row('d3', 'x3')] });
    // Rows without insertId are never de-duplicated.
    await insertAll('ecommerce_events', { rows: [{ json: { event: 'dedupe', user_id: 'x4' } }] });
    await insertAll('ecommerce_events', { rows: [{ json: { event: 'dedupe', user_id: 'x4' } }] });
    const [rows] = await bigquery.query(
      "SELECT user_id, COUNT(*) AS n FROM retail_dataset.ecommerce_events WHERE event = 'dedupe' GROUP BY user_id ORDER BY user_id",
    );
    expect(rows).toEqual([
      { user_id: 'x1', n: 1 },
      { user_id: 'x2', n: 1 },
      { user_id: 'x3', n: 1 },
      { user_id: 'x4', n: 2 },
    ]);
  });

  it('pages table data with maxResults, pageToken and startIndex', async () => {
    const metadata = await metadataOf<TableMeta>(table);
    const total = Number(metadata.numRows);
    expect(total).toBe(10);
    const [first, next] = await table.getRows({ maxResults: 4, autoPaginate: false });
    expect(first).toHaveLength(4);
    expect(next).toMatchObject({ pageToken: '4' });
    const [all] = await table.getRows();
    expect(all).toHaveLength(total);
    const [tail] = await table.getRows({ startIndex: '8', maxResults: 5, autoPaginate: false });
    expect(tail).toEqual(all.slice(8));
  });

  it('patches descriptions, adds a column and relaxes REQUIRED', async () => {
    const metadata = await metadataOf<TableMeta>(table);
    const fields = metadata.schema.fields.map((f) =>
      f.name === 'user_id' ? { ...f, mode: 'NULLABLE' } : f,
    );
    await table.setMetadata({
      description: 'events, patched',
      labels: { lab: 'cymbal' },
      schema: { fields: [...fields, { name: 'session_id', type: 'STRING', mode: 'NULLABLE' }] },
    });
    const patched = await metadataOf<TableMeta>(table);
    expect(patched.description).toBe('events, patched');
    expect(patched.labels).toEqual({ lab: 'cymbal' });
    expect(patched.timePartitioning).toEqual({ type: 'DAY', field: 'event_datetime' });
    await table.insert([{ event: 'late', session_id: 's1' }]);
    const [rows] = await bigquery.query(
      "SELECT session_id, user_id FROM retail_dataset.ecommerce_events WHERE event = 'late'",
    );
    expect(rows).toEqual([{ session_id: 's1', user_id: null }]);
    await expect(
      table.setMetadata({ schema: { fields: [{ name: 'event', type: 'STRING' }] } }),
    ).rejects.toMatchObject({ code: 400 });
  });

  it('lists datasets and tables with row counts in status', async () => {
    const status = await local.service.status();
    expect(status.state).toBe('running');
    expect(status.resources).toEqual([
      { kind: 'dataset', name: `${PROJECT}:retail_dataset` },
      { kind: 'table', name: `${PROJECT}:retail_dataset.ecommerce_events`, detail: '11 rows' },
    ]);
    expect(await local.service.engine.countRows('retail_dataset', 'ecommerce_events')).toBe(11);
  });

  it('keeps datasets, schemas and rows across a restart', async () => {
    await local.close();
    local = await startBigQuery(dir);
    bigquery = local.bigquery;
    dataset = bigquery.dataset('retail_dataset');
    table = dataset.table('ecommerce_events');
    const metadata = await metadataOf<TableMeta>(table);
    expect(metadata.numRows).toBe('11');
    expect(metadata.description).toBe('events, patched');
    expect(metadata.timePartitioning).toEqual({ type: 'DAY', field: 'event_datetime' });
    const [revenue] = await bigquery.query(REVENUE_QUERY);
    expect(revenue).toEqual([{ event: 'purchase', transactions: 1, revenue: 35.43 }]);
    await table.insert([{ event: 'after_restart', user_id: 'r1' }]);
    expect(await local.service.engine.countRows('retail_dataset', 'ecommerce_events')).toBe(12);
  });

  it('deletes a table, and a dataset only with deleteContents', async () => {
    const [scratch] = await dataset.createTable('scratch', {
      schema: { fields: [{ name: 'a', type: 'INT64' }] },
    });
    await scratch.delete();
    await expect(scratch.getMetadata()).rejects.toMatchObject({ code: 404 });
    await expect(dataset.delete()).rejects.toMatchObject({ code: 400 });
    await dataset.delete({ force: true });
    const [datasets] = await bigquery.getDatasets();
    expect(datasets).toEqual([]);
    await expect(bigquery.query(TABLE_QUERY)).rejects.toMatchObject({ code: 404 });
  });
});

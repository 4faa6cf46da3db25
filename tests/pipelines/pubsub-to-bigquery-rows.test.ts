import { describe, expect, it } from '@jest/globals';

import {
  ParameterError,
  parsePubSubToBigQueryParameters,
} from '../../src/pipelines/pubsub-to-bigquery/parameters.js';
import { RateWindow, percentile } from '../../src/pipelines/pubsub-to-bigquery/metrics.js';
import {
  DEAD_LETTER_SCHEMA,
  deadLetterRow,
  failure,
  insertErrorMessage,
  isTransientInsertFailure,
  jsonToRow,
} from '../../src/pipelines/pubsub-to-bigquery/rows.js';
import type { PipelineMessage } from '../../src/pipelines/pubsub-to-bigquery/rows.js';
import { byRequestSize, insertAllBody } from '../../src/pipelines/pubsub-to-bigquery/sink.js';
import type { SinkRow } from '../../src/pipelines/pubsub-to-bigquery/sink.js';

const message = (data: string, attributes: Record<string, string> = {}): PipelineMessage => ({
  messageId: '42',
  data: Buffer.from(data, 'utf8'),
  attributes,
  publishTimeMs: 0,
});

describe('JSON payload to BigQuery row', () => {
  it('keeps object keys as columns, nested objects as records and arrays as repeated values', () => {
    const payload = {
      event: 'purchase',
      user_id: 'u1',
      ecommerce: { purchase: { value: 35.43, items: [{ item_id: '1' }, { item_id: '2' }] } },
    };
    const result = jsonToRow(JSON.stringify(payload));
    expect(result).toEqual({ kind: 'row', row: payload });
  });

  it('fails text that is not JSON, naming the parse error', () => {
    const result = jsonToRow('{"event": ');
    expect(result.kind).toBe('failed');
    if (result.kind === 'failed') {
      expect(result.error.message).toMatch(/^Payload is not valid JSON: /);
      expect(result.error.stacktrace).toContain('SyntaxError');
    }
  });

  it.each([
    ['[1,2]', 'an array'],
    ['"text"', 'string'],
    ['12', 'number'],
    ['null', 'null'],
  ])('fails %s, which is JSON %s and not an object', (text, kind) => {
    const result = jsonToRow(text);
    expect(result.kind).toBe('failed');
    if (result.kind === 'failed') expect(result.error.message).toContain(`JSON ${kind}`);
  });
});

describe('dead-letter records', () => {
  it('carry the payload as text and base64, the attributes as key/value pairs, and the reason', () => {
    const now = new Date('2026-12-03T10:00:00.000Z');
    const record = deadLetterRow(
      message('not json', { origin: 'gtm-cloud-run', username: 'gcp-demo' }),
      failure('Payload is not valid JSON: x'),
      undefined,
      now,
    );
    expect(record).toEqual({
      timestamp: '2026-12-03T10:00:00.000Z',
      payloadString: 'not json',
      payloadBytes: Buffer.from('not json').toString('base64'),
      attributes: [
        { key: 'origin', value: 'gtm-cloud-run' },
        { key: 'username', value: 'gcp-demo' },
      ],
      errorMessage: 'Payload is not valid JSON: x',
      stacktrace: 'Error: Payload is not valid JSON: x',
    });
    const columns = DEAD_LETTER_SCHEMA.fields.map((f) => f.name);
    expect(Object.keys(record).sort()).toEqual([...columns].sort());
  });

  it('describe BigQuery insert errors as JSON with each reason', () => {
    const text = insertErrorMessage([
      { reason: 'invalid', location: 'colour', message: 'no such field: colour.' },
    ]);
    expect(JSON.parse(text)).toEqual({
      errors: [{ reason: 'invalid', location: 'colour', message: 'no such field: colour.' }],
    });
  });

  it('tell transient insert failures (retried) from rejections for good', () => {
    expect(isTransientInsertFailure([{ reason: 'stopped' }])).toBe(true);
    expect(isTransientInsertFailure([{ reason: 'backendError' }])).toBe(true);
    expect(isTransientInsertFailure([{ reason: 'invalid', message: 'no such field' }])).toBe(false);
    expect(isTransientInsertFailure([{ reason: 'stopped' }, { reason: 'invalid' }])).toBe(false);
  });
});

describe('template parameters', () => {
  const base = {
    inputSubscription: 'projects/p1/subscriptions/ecommerce-events-pull',
    outputTableSpec: 'p1:retail_dataset.ecommerce_events',
  };

  it('default the dead-letter table to OUTPUT_TABLE_error_records', () => {
    const options = parsePubSubToBigQueryParameters(base);
    expect(options.inputSubscription).toEqual({
      projectId: 'p1',
      subscriptionId: 'ecommerce-events-pull',
      name: 'projects/p1/subscriptions/ecommerce-events-pull',
    });
    expect(options.deadLetterTable).toEqual({
      projectId: 'p1',
      datasetId: 'retail_dataset',
      tableId: 'ecommerce_events_error_records',
    });
    expect(options.udf).toBeUndefined();
  });

  it('read the UDF options, with the reload interval as whole minutes', () => {
    const options = parsePubSubToBigQueryParameters({
      ...base,
      outputDeadletterTable: 'p1:errors.dead',
      javascriptTextTransformGcsPath: 'gs://bucket/udf/transform.js',
      javascriptTextTransformFunctionName: 'process',
      javascriptTextTransformReloadIntervalMinutes: '5',
    });
    expect(options.deadLetterTable.datasetId).toBe('errors');
    expect(options.udf).toEqual({
      gcsPath: 'gs://bucket/udf/transform.js',
      functionName: 'process',
      reloadIntervalMinutes: 5,
    });
  });

  it.each([
    [
      { outputTableSpec: base.outputTableSpec },
      /Missing required template parameter "inputSubscription"/,
    ],
    [
      { ...base, inputSubscription: 'ecommerce-events-pull' },
      /projects\/PROJECT\/subscriptions\/NAME/,
    ],
    [{ ...base, outputTableSpec: 'retail_dataset.ecommerce_events' }, /PROJECT:DATASET.TABLE/],
    [{ ...base, javascriptTextTransformGcsPath: 'gs://b/f.js' }, /needs both/],
    [{ ...base, colour: 'blue' }, /Unrecognized template parameter\(s\): colour/],
    [
      {
        ...base,
        javascriptTextTransformGcsPath: 'gs://b/f.js',
        javascriptTextTransformFunctionName: 'process',
        javascriptTextTransformReloadIntervalMinutes: 'soon',
      },
      /whole number of minutes/,
    ],
  ])('reject %j', (parameters, reason) => {
    expect(() => parsePubSubToBigQueryParameters(parameters as Record<string, string>)).toThrow(
      ParameterError,
    );
    expect(() => parsePubSubToBigQueryParameters(parameters as Record<string, string>)).toThrow(
      reason,
    );
  });
});

describe('job metrics window', () => {
  it('reports the rate of completed seconds and latency percentiles', () => {
    const window = new RateWindow(10_000);
    for (let second = 0; second < 9; second++) {
      window.add(1_000_000 + second * 1000, 100, [10, 20, 30, 40, 1000]);
    }
    const now = 1_000_000 + 9 * 1000;
    expect(window.ratePerSecond(now)).toBe(100);
    expect(window.latency(now)).toEqual({ p50: 30, p99: 1000 });
    expect(percentile([], 0.5)).toBe(0);
  });
});

describe('insertAll requests', () => {
  it('carry each row as its JSON text with the message id as insertId', () => {
    const body = insertAllBody([
      { insertId: 'm1', json: '{"event":"view_item","user_id":"u1"}' },
      { insertId: 'm"2', json: '{ "event" : "purchase" }' },
    ]);
    expect(JSON.parse(body)).toEqual({
      skipInvalidRows: true,
      rows: [
        { insertId: 'm1', json: { event: 'view_item', user_id: 'u1' } },
        { insertId: 'm"2', json: { event: 'purchase' } },
      ],
    });
  });

  it('are split so that none grows past the size limit', () => {
    const rows = Array.from({ length: 10 }, (_, i) => ({
      insertId: String(i),
      json: JSON.stringify({ text: 'é'.repeat(100) }),
    }));
    const chunks = byRequestSize(rows, 700);
    expect(chunks.flat()).toEqual(rows);
    expect(chunks.length).toBe(5);
    for (const chunk of chunks) expect(Buffer.byteLength(insertAllBody(chunk))).toBeLessThan(800);
    expect(byRequestSize([rows[0] as SinkRow], 10)).toEqual([[rows[0]]]);
  });
});

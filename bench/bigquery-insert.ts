import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BigQuery } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';

import type { BigQueryService } from '../src/local/bigquery/service.js';
import { bigqueryServiceFactory } from '../src/local/bigquery/service.js';
import { openHost } from '../src/local/host.js';
import { silentLogger } from '../src/log.js';
import { eventSchema, sampleEvents } from '../tests/local/bigquery-fixtures.js';

/**
 * Streaming-insert throughput of the local BigQuery: `tabledata.insertAll` through the official
 * client over HTTP, 500-row batches of the lab's nested e-commerce event, each row with an
 * insertId as the Dataflow template sends it. Every request is answered after its rows are
 * committed. Prints rows per second for 1 and 4 requests in flight, then for the same inserts
 * made in process (no HTTP, no client), each with the CPU time the whole process (client, server
 * and DuckDB threads) spent per 1,000 rows, a figure a busy machine distorts less than the clock.
 *
 *     node dist/bench/bigquery-insert.js [rows=50000] [batch=500]
 */

const total = Number(process.argv[2] ?? 50_000);
const batchSize = Number(process.argv[3] ?? 500);
const project = 'bench';

function batch(start: number): { insertId: string; json: Record<string, unknown> }[] {
  return Array.from({ length: batchSize }, (_, i) => {
    const n = start + i;
    const event = sampleEvents[n % sampleEvents.length]!;
    return { insertId: `row-${n}`, json: { ...event, user_id: `UID${n}` } };
  });
}

type Insert = (rows: ReturnType<typeof batch>) => Promise<unknown>;

/** Sends `total` rows in batches, `inFlight` requests at a time; prints what it measured. */
async function measure(
  label: string,
  inFlight: number,
  insert: Insert,
  count: () => Promise<number>,
) {
  const batches = Math.ceil(total / batchSize);
  let next = 0;
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const worker = async (): Promise<void> => {
    while (next < batches) await insert(batch(next++ * batchSize));
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const stored = await count();
  const cpuPerThousand = (cpu.user + cpu.system) / 1000 / (stored / 1000);
  console.log(
    `  ${label}, ${inFlight} in flight: ${Math.round(stored / seconds)} rows/s ` +
      `(${stored} rows in ${seconds.toFixed(2)} s), CPU ${cpuPerThousand.toFixed(1)} ms per 1000 rows`,
  );
}

/** Each run gets a fresh local cloud, so one run's data and checkpoints never slow the next. */
async function run(label: string, inFlight: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cymbal-bq-bench-'));
  const host = await openHost({
    dataDir: dir,
    port: 0,
    pubsubHost: '127.0.0.1:1',
    projectId: project,
    log: silentLogger,
    factories: [bigqueryServiceFactory],
  });
  try {
    const bigquery = new BigQuery({
      projectId: project,
      apiEndpoint: host.endpoint,
      authClient: new PassThroughClient(),
    });
    const [dataset] = await bigquery.createDataset('retail_dataset');
    const [table] = await dataset.createTable('ecommerce_events', {
      schema: { fields: eventSchema },
      timePartitioning: { type: 'DAY', field: 'event_datetime' },
    });
    const engine = host.cloud.service<BigQueryService>('bigquery').engine;
    const ref = { projectId: project, datasetId: 'retail_dataset', tableId: 'ecommerce_events' };
    const insert: Insert =
      label === 'in process'
        ? (rows) => engine.tableData.insertAll(ref, { rows })
        : (rows) => table.insert(rows, { raw: true });
    await measure(label, inFlight, insert, () =>
      engine.countRows('retail_dataset', 'ecommerce_events'),
    );
  } finally {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`insertAll, ${batchSize}-row batches of the lab's nested event, ${total} rows a run`);
for (const inFlight of [1, 4]) await run('official client over HTTP', inFlight);
// The same inserts without HTTP and the client: what the server side alone sustains.
await run('in process', 1);

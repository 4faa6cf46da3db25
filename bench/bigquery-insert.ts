import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BigQuery } from '@google-cloud/bigquery';
import { PassThroughClient } from 'google-auth-library';

import { bigqueryServiceFactory } from '../src/local/bigquery/service.js';
import { openHost } from '../src/local/host.js';
import { silentLogger } from '../src/log.js';
import { eventSchema, sampleEvents } from '../tests/local/bigquery-fixtures.js';

/**
 * Streaming-insert throughput of the local BigQuery: `tabledata.insertAll` through the official
 * client over HTTP, 500-row batches of the lab's nested e-commerce event, each row with an
 * insertId as the Dataflow template sends it. Every request is answered after its rows are
 * committed. Prints rows per second for each number of requests in flight, and the CPU time the
 * whole process (client, server and DuckDB threads) spent per 1,000 rows, a figure that a busy
 * machine distorts less than the wall clock.
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

async function main(): Promise<void> {
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
    console.log(
      `insertAll, ${batchSize}-row batches of the lab's nested event, ${total} rows each run`,
    );
    for (const inFlight of [1, 4]) {
      const [table] = await dataset.createTable(`events_${inFlight}`, {
        schema: { fields: eventSchema },
        timePartitioning: { type: 'DAY', field: 'event_datetime' },
      });
      const batches = Math.ceil(total / batchSize);
      let next = 0;
      const started = performance.now();
      const cpuBefore = process.cpuUsage();
      const worker = async (): Promise<void> => {
        while (next < batches) {
          const start = next++ * batchSize;
          await table.insert(batch(start), { raw: true });
        }
      };
      await Promise.all(Array.from({ length: inFlight }, worker));
      const seconds = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      const [rows] = await bigquery.query(
        `SELECT COUNT(*) AS n FROM retail_dataset.events_${inFlight}`,
      );
      const stored = (rows[0] as { n: number }).n;
      const rate = Math.round(stored / seconds);
      const cpuPerThousand = (cpu.user + cpu.system) / 1000 / (stored / 1000);
      console.log(
        `  ${inFlight} request(s) in flight: ${rate} rows/s (${stored} rows in ${seconds.toFixed(2)} s), ` +
          `CPU ${cpuPerThousand.toFixed(1)} ms per 1000 rows`,
      );
    }
  } finally {
    await host.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();

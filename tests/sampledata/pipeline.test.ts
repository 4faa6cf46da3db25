import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { LocalPipeline } from '../../bench/lib/local-pipeline.js';
import { startLocalPipeline } from '../../bench/lib/local-pipeline.js';
import { silentLogger } from '../../src/log.js';
import { EventTally, generateEvents } from '../../src/sampledata/events.js';

/**
 * The sample events through the whole local pipeline (ingest app, Pub/Sub emulator, the
 * Dataflow template's job, BigQuery on DuckDB): the lab's three posts give the lab's answer,
 * and a generated stream leaves exactly the rows and revenue its totals predict, its bad events
 * turned away at the door.
 */

let dir: string;
let pipeline: LocalPipeline;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cymbal-sampledata-'));
  pipeline = await startLocalPipeline({ stateDir: dir, log: silentLogger });
}, 90_000);

afterAll(async () => {
  await pipeline?.stop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

async function post(body: string | Buffer): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${pipeline.appPort}/json`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  await response.arrayBuffer();
  return response.status;
}

async function query<T>(sql: string): Promise<T[]> {
  const [rows] = await pipeline.clients.bigquery.query({ query: sql });
  return rows as T[];
}

async function waitForRows(count: number): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const [row] = await query<{ n: number }>(`SELECT COUNT(*) AS n FROM \`${pipeline.tableName}\``);
    const n = Number(row?.n ?? 0);
    if (n >= count || Date.now() > deadline) return n;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// The lab's test query, as the lab writes it (a double-quoted string included).
const revenueQuery = (): string =>
  'SELECT event, COUNT(DISTINCT ecommerce.purchase.transaction_id) AS transactions, ' +
  `SUM(ecommerce.purchase.value) AS revenue FROM \`${pipeline.tableName}\` ` +
  'WHERE event = "purchase" GROUP BY event';

describe('sample events through the local pipeline', () => {
  it("give the lab's answer: 3 rows, 1 purchase, revenue 35.43", async () => {
    for (const name of ['view_item', 'add_to_cart', 'purchase']) {
      expect(await post(readFileSync(join('sample-data/events', `${name}.json`)))).toBe(200);
    }
    expect(await waitForRows(3)).toBe(3);
    const rows = await query<{ event: string; user_id: string }>(
      `SELECT event_datetime, event, user_id FROM \`${pipeline.tableName}\` ORDER BY event_datetime`,
    );
    expect(rows.map((r) => r.event)).toEqual(['view_item', 'add_to_cart', 'purchase']);
    expect(await query(revenueQuery())).toEqual([
      { event: 'purchase', transactions: 1, revenue: 35.43 },
    ]);
  }, 60_000);

  it('leave exactly the rows and revenue a generated stream predicts', async () => {
    const tally = new EventTally();
    const statuses = new Map<number, number>();
    const stream = generateEvents({ count: 200, seed: 77, badFraction: 0.2 });
    const worker = async (): Promise<void> => {
      for (const event of stream) {
        tally.add(event);
        const status = await post(event.body);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const totals = tally.totals();
    expect(totals.total).toBe(200);
    expect(statuses.get(200)).toBe(totals.byKind.valid);
    expect(statuses.get(400)).toBe(200 - totals.byKind.valid);

    expect(await waitForRows(3 + totals.byKind.valid)).toBe(3 + totals.byKind.valid);
    const [answer] = await query<{ transactions: number; revenue: number }>(revenueQuery());
    expect(answer?.transactions).toBe(1 + totals.purchases);
    expect(answer?.revenue).toBeCloseTo(35.43 + totals.revenue, 2);
  }, 60_000);
});

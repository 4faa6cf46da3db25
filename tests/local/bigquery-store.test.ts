import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from '@jest/globals';

import { DuckStore } from '../../src/local/bigquery/store.js';

/**
 * The DuckDB file behind the local BigQuery folds its write-ahead log into the file once writes
 * pause, not inside a commit: a stream of inserts never waits for a checkpoint, and the log does
 * not wait for the daemon to stop either.
 */

const walSize = (file: string): number =>
  existsSync(`${file}.wal`) ? statSync(`${file}.wal`).size : 0;

describe('DuckStore checkpoints', () => {
  const dirs: string[] = [];
  const stores: DuckStore[] = [];
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  async function open(): Promise<{ store: DuckStore; file: string }> {
    const dir = mkdtempSync(join(tmpdir(), 'cymbal-store-'));
    dirs.push(dir);
    const file = join(dir, 'bigquery.duckdb');
    const store = await DuckStore.open(file);
    stores.push(store);
    return { store, file };
  }

  it('keeps committed rows in the log while writes go on, and checkpoints once they pause', async () => {
    const { store, file } = await open();
    await store.exclusive((c) => c.run('CREATE TABLE t (n INTEGER, s VARCHAR)'));
    // About 20 MB of log: more than DuckDB's own 16 MB threshold, which would have checkpointed.
    for (let i = 0; i < 20; i++) {
      await store.exclusive((c) =>
        c.run(
          `INSERT INTO t SELECT range, repeat('x', 200) FROM range(${i * 5000}, ${(i + 1) * 5000})`,
        ),
      );
    }
    expect(walSize(file)).toBeGreaterThan(16 * 1024 * 1024);
    const read = await store.reader.runAndReadAll('SELECT count(*) FROM t');
    expect(Number(read.getRows()[0]?.[0])).toBe(100_000);

    const deadline = Date.now() + 10_000;
    while (walSize(file) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(walSize(file)).toBe(0);
    const after = await store.reader.runAndReadAll('SELECT count(*), max(n) FROM t');
    expect(after.getRows()[0]?.map(Number)).toEqual([100_000, 99_999]);
  }, 30_000);

  it('writes after an idle checkpoint are committed and kept across a restart', async () => {
    const { store, file } = await open();
    await store.exclusive((c) => c.run('CREATE TABLE t (n INTEGER)'));
    await store.exclusive((c) => c.run('INSERT INTO t SELECT range FROM range(1000)'));
    while (walSize(file) > 0) await new Promise((r) => setTimeout(r, 100));
    await store.exclusive((c) => c.run('INSERT INTO t VALUES (1000)'));
    await store.close();
    stores.splice(0);

    const reopened = await DuckStore.open(file);
    stores.push(reopened);
    const rows = await reopened.reader.runAndReadAll('SELECT count(*) FROM t');
    expect(Number(rows.getRows()[0]?.[0])).toBe(1001);
  }, 30_000);
});

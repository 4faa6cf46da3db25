import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

import type { DuckDBConnection } from '@duckdb/node-api';
import { DuckDBInstance } from '@duckdb/node-api';

/**
 * The one DuckDB file behind the local BigQuery. Writes (DDL, streaming inserts, DML) go through
 * one connection, one at a time, so a catalog change and its DDL commit together; queries use a
 * second connection and see every committed write.
 */
export class DuckStore {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly instance: DuckDBInstance,
    readonly writer: DuckDBConnection,
    readonly reader: DuckDBConnection,
  ) {}

  static async open(path: string): Promise<DuckStore> {
    mkdirSync(dirname(path), { recursive: true });
    // BigQuery computes in UTC; DuckDB's TIMESTAMPTZ functions follow the session time zone.
    const instance = await DuckDBInstance.create(path);
    const writer = await instance.connect();
    await writer.run(`SET GLOBAL TimeZone = 'UTC'`);
    const reader = await instance.connect();
    await reader.run(`SET TimeZone = 'UTC'`);
    return new DuckStore(instance, writer, reader);
  }

  /** Runs `work` on the write connection once every earlier write has finished. */
  exclusive<T>(work: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    const run = this.chain.then(
      () => work(this.writer),
      () => work(this.writer),
    );
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Runs `work` inside one transaction on the write connection. */
  transaction<T>(work: (connection: DuckDBConnection) => Promise<T>): Promise<T> {
    return this.exclusive(async (connection) => {
      await connection.run('BEGIN TRANSACTION');
      try {
        const result = await work(connection);
        await connection.run('COMMIT');
        return result;
      } catch (error) {
        await connection.run('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  /** Waits for pending writes, writes a checkpoint and closes the file. */
  async close(): Promise<void> {
    await this.exclusive(async (connection) => {
      await connection.run('CHECKPOINT').catch(() => undefined);
    });
    this.reader.closeSync();
    this.writer.closeSync();
    this.instance.closeSync();
  }
}

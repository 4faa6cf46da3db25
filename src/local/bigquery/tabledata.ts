import type { DuckDBPreparedStatement } from '@duckdb/node-api';

import type { Catalog, TableReference, TableResource } from './catalog.js';
import { tableKey } from './catalog.js';
import type { TimestampFormat, WireRow } from './cells.js';
import { encodeRow } from './cells.js';
import type { RowError } from './rows.js';
import { checkRow, STOPPED } from './rows.js';
import type { TableField } from './schema.js';
import { insertExpression, jsonStructure, quoteIdent } from './schema.js';
import type { DuckStore } from './store.js';

/**
 * Streaming inserts and table reads. Valid rows become NDJSON lines that one prepared
 * `INSERT ... SELECT from_json(...)` statement writes per table; requests that arrive while a
 * write runs are committed together in the next one. A request is answered only after its rows
 * are committed, so they are visible to the next query.
 */

export interface InsertAllRequest {
  rows?: { insertId?: string; json?: unknown }[];
  skipInvalidRows?: boolean;
  ignoreUnknownValues?: boolean;
}

export interface InsertAllResult {
  insertErrors: { index: number; errors: RowError[] }[];
  inserted: number;
}

/** BigQuery drops a row whose insertId it saw for the same table within about a minute. */
const DEDUPE_WINDOW_MS = 60_000;
const DEDUPE_MAX_IDS = 1_000_000;

class RecentInsertIds {
  private readonly seen = new Map<string, number>();

  has(key: string, now: number): boolean {
    const until = this.seen.get(key);
    return until !== undefined && until > now;
  }

  add(key: string, now: number): void {
    this.seen.delete(key);
    this.seen.set(key, now + DEDUPE_WINDOW_MS);
    for (const [oldest, until] of this.seen) {
      if (until > now && this.seen.size <= DEDUPE_MAX_IDS) break;
      this.seen.delete(oldest);
    }
  }
}

interface PendingRow {
  line: string;
  insertId: string | undefined;
}

interface PendingWrite {
  table: TableResource;
  rows: PendingRow[];
  done: (error?: Error) => void;
}

export class TableData {
  private readonly recent = new RecentInsertIds();
  private readonly statements = new Map<string, DuckDBPreparedStatement>();
  private pending: PendingWrite[] = [];
  private scheduled = false;

  constructor(
    private readonly store: DuckStore,
    private readonly catalog: Catalog,
  ) {}

  /** Forgets the prepared insert of a table whose schema changed or which was dropped. */
  invalidate(ref: TableReference): void {
    const key = tableKey(ref);
    const statement = this.statements.get(key);
    statement?.destroySync();
    this.statements.delete(key);
  }

  async insertAll(ref: TableReference, request: InsertAllRequest): Promise<InsertAllResult> {
    const table = this.catalog.table(ref);
    const rows = request.rows ?? [];
    const insertErrors: InsertAllResult['insertErrors'] = [];
    const valid: { index: number; row: PendingRow }[] = [];
    rows.forEach((entry, index) => {
      const checked = checkRow(table.schema.fields, entry?.json, request);
      if (checked.line) {
        valid.push({ index, row: { line: checked.line, insertId: entry.insertId } });
      } else insertErrors.push({ index, errors: checked.errors });
    });
    if (insertErrors.length > 0 && !request.skipInvalidRows) {
      // Without skipInvalidRows one bad row fails the request: the valid rows are "stopped".
      for (const { index } of valid) insertErrors.push({ index, errors: [STOPPED] });
      insertErrors.sort((a, b) => a.index - b.index);
      return { insertErrors, inserted: 0 };
    }
    if (valid.length > 0)
      await this.enqueue(
        table,
        valid.map((v) => v.row),
      );
    return { insertErrors, inserted: valid.length };
  }

  private enqueue(table: TableResource, rows: PendingRow[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ table, rows, done: (error) => (error ? reject(error) : resolve()) });
      if (this.scheduled) return;
      this.scheduled = true;
      void this.store.exclusive(() => this.drain());
    });
  }

  private async drain(): Promise<void> {
    this.scheduled = false;
    const writes = this.pending;
    this.pending = [];
    const byTable = new Map<string, PendingWrite[]>();
    for (const write of writes) {
      const key = tableKey(write.table.tableReference);
      byTable.set(key, [...(byTable.get(key) ?? []), write]);
    }
    for (const [key, group] of byTable) {
      try {
        const table = group[0]!.table;
        const now = Date.now();
        const batchIds = new Set<string>();
        const lines: string[] = [];
        for (const row of group.flatMap((w) => w.rows)) {
          if (row.insertId) {
            const idKey = `${key}\u0000${row.insertId}`;
            if (batchIds.has(idKey) || this.recent.has(idKey, now)) continue;
            batchIds.add(idKey);
          }
          lines.push(row.line);
        }
        if (lines.length > 0) {
          const statement = await this.insertStatement(table);
          statement.bindVarchar(1, lines.join('\n'));
          await statement.run();
        }
        const committed = Date.now();
        for (const idKey of batchIds) this.recent.add(idKey, committed);
        for (const write of group) write.done();
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        for (const write of group) write.done(failure);
      }
    }
  }

  private async insertStatement(table: TableResource): Promise<DuckDBPreparedStatement> {
    const key = tableKey(table.tableReference);
    const cached = this.statements.get(key);
    if (cached) return cached;
    const fields = table.schema.fields;
    const structure = JSON.stringify(jsonStructure(fields)).replaceAll("'", "''");
    const columns = fields.map((f) => quoteIdent(f.name)).join(', ');
    const values = fields.map((f) => insertExpression(`r.${quoteIdent(f.name)}`, f)).join(', ');
    const sql =
      `INSERT INTO ${this.catalog.duckTable(table.tableReference)} (${columns}) ` +
      `SELECT ${values} FROM (SELECT from_json(j, '${structure}') AS r ` +
      `FROM (SELECT unnest(string_split($1, chr(10))) AS j))`;
    const statement = await this.store.writer.prepare(sql);
    this.statements.set(key, statement);
    return statement;
  }

  async countRows(ref: TableReference): Promise<number> {
    this.catalog.table(ref);
    const result = await this.store.reader.runAndReadAll(
      `SELECT count(*) FROM ${this.catalog.duckTable(ref)}`,
    );
    return Number(result.getRows()[0]?.[0] ?? 0);
  }

  /** Rows in insertion order, `startIndex` first, at most `maxResults`. */
  async list(
    ref: TableReference,
    options: { startIndex: number; maxResults: number; selectedFields?: string[] },
    format: TimestampFormat,
  ): Promise<{ fields: TableField[]; rows: WireRow[]; totalRows: number }> {
    const table = this.catalog.table(ref);
    const wanted = new Set(
      (options.selectedFields ?? []).map((f) => f.split('.')[0]!.toLowerCase()),
    );
    const fields = table.schema.fields.filter(
      (f) => wanted.size === 0 || wanted.has(f.name.toLowerCase()),
    );
    const totalRows = await this.countRows(ref);
    if (fields.length === 0 || options.maxResults <= 0) return { fields, rows: [], totalRows };
    const columns = fields.map((f) => quoteIdent(f.name)).join(', ');
    const result = await this.store.reader.runAndReadAll(
      `SELECT ${columns} FROM ${this.catalog.duckTable(ref)} ORDER BY rowid LIMIT ${Math.floor(options.maxResults)} OFFSET ${Math.floor(options.startIndex)}`,
    );
    const rows = result.getRows().map((values) => encodeRow(fields, values, format));
    return { fields, rows, totalRows };
  }
}

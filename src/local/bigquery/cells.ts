import type { DuckDBType, DuckDBValue } from '@duckdb/node-api';
import {
  DuckDBBlobValue,
  DuckDBListValue,
  DuckDBStructValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTypeId,
} from '@duckdb/node-api';

import { ApiError } from '../http.js';
import type { TableField } from './schema.js';
import { civilText, floatSeconds, isoTimestamp } from './values.js';

/**
 * Result rows in BigQuery's wire format: each row is `{f: [{v}]}`, scalars are strings, a
 * RECORD is a nested `{f: [...]}` and a REPEATED field a list of `{v}`. Also derives a BigQuery
 * schema from the types of a DuckDB result.
 */

export type Cell = { v: unknown };
export type WireRow = { f: Cell[] };

/** How TIMESTAMP values are written, following the request's `formatOptions`. */
export type TimestampFormat = 'int64' | 'float' | 'iso';

export function timestampFormat(options: {
  useInt64Timestamp?: unknown;
  timestampOutputFormat?: unknown;
}): TimestampFormat {
  const given = options.timestampOutputFormat;
  const format = typeof given === 'string' ? given.toUpperCase() : '';
  if (format === 'ISO8601_STRING') return 'iso';
  if (format === 'INT64') return 'int64';
  if (format === 'FLOAT64') return 'float';
  const int64 = options.useInt64Timestamp;
  return int64 === true || int64 === 'true' ? 'int64' : 'float';
}

const scalarOf: Partial<Record<DuckDBTypeId, string>> = {
  [DuckDBTypeId.BOOLEAN]: 'BOOLEAN',
  [DuckDBTypeId.TINYINT]: 'INTEGER',
  [DuckDBTypeId.SMALLINT]: 'INTEGER',
  [DuckDBTypeId.INTEGER]: 'INTEGER',
  [DuckDBTypeId.BIGINT]: 'INTEGER',
  [DuckDBTypeId.UTINYINT]: 'INTEGER',
  [DuckDBTypeId.USMALLINT]: 'INTEGER',
  [DuckDBTypeId.UINTEGER]: 'INTEGER',
  [DuckDBTypeId.UBIGINT]: 'INTEGER',
  [DuckDBTypeId.HUGEINT]: 'INTEGER',
  [DuckDBTypeId.UHUGEINT]: 'INTEGER',
  [DuckDBTypeId.FLOAT]: 'FLOAT',
  [DuckDBTypeId.DOUBLE]: 'FLOAT',
  [DuckDBTypeId.VARCHAR]: 'STRING',
  [DuckDBTypeId.ENUM]: 'STRING',
  [DuckDBTypeId.UUID]: 'STRING',
  [DuckDBTypeId.BLOB]: 'BYTES',
  [DuckDBTypeId.DATE]: 'DATE',
  [DuckDBTypeId.TIME]: 'TIME',
  [DuckDBTypeId.TIMESTAMP]: 'DATETIME',
  [DuckDBTypeId.TIMESTAMP_S]: 'DATETIME',
  [DuckDBTypeId.TIMESTAMP_MS]: 'DATETIME',
  [DuckDBTypeId.TIMESTAMP_NS]: 'DATETIME',
  [DuckDBTypeId.TIMESTAMP_TZ]: 'TIMESTAMP',
  [DuckDBTypeId.INTERVAL]: 'INTERVAL',
  [DuckDBTypeId.SQLNULL]: 'INTEGER',
};

function unsupportedResult(name: string, what: string): ApiError {
  return new ApiError(
    'INVALID_ARGUMENT',
    `Column ${name} has type ${what}, which BigQuery results cannot hold.`,
    { reason: 'invalidQuery' },
  );
}

/** The BigQuery field for a result column of the given DuckDB type. */
export function fieldFromDuck(name: string, type: DuckDBType): TableField {
  if (type.typeId === DuckDBTypeId.LIST || type.typeId === DuckDBTypeId.ARRAY) {
    const element = fieldFromDuck(name, type.valueType);
    if (element.mode === 'REPEATED') throw unsupportedResult(name, 'ARRAY<ARRAY>');
    return { ...element, mode: 'REPEATED' };
  }
  if (type.typeId === DuckDBTypeId.STRUCT) {
    const fields = type.entryNames.map((n, i) => fieldFromDuck(n, type.entryTypes[i]!));
    return { name, type: 'RECORD', mode: 'NULLABLE', fields };
  }
  if (type.typeId === DuckDBTypeId.DECIMAL) {
    return { name, type: type.scale > 9 ? 'BIGNUMERIC' : 'NUMERIC', mode: 'NULLABLE' };
  }
  if (type.typeId === DuckDBTypeId.VARCHAR && type.alias === 'JSON') {
    return { name, type: 'JSON', mode: 'NULLABLE' };
  }
  const scalar = scalarOf[type.typeId];
  if (!scalar) throw unsupportedResult(name, type.toString());
  return { name, type: scalar, mode: 'NULLABLE' };
}

function floatText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return String(value);
}

function microsOf(value: DuckDBValue): bigint | undefined {
  if (value instanceof DuckDBTimestampTZValue || value instanceof DuckDBTimestampValue) {
    return value.micros;
  }
  return undefined;
}

function scalarCell(field: TableField, value: DuckDBValue, format: TimestampFormat): unknown {
  switch (field.type) {
    case 'FLOAT':
      return floatText(Number(value));
    case 'BOOLEAN':
      return value ? 'true' : 'false';
    case 'BYTES':
      return value instanceof DuckDBBlobValue
        ? Buffer.from(value.bytes).toString('base64')
        : Buffer.from(String(value)).toString('base64');
    case 'TIMESTAMP': {
      const micros = microsOf(value);
      if (micros === undefined) return String(value);
      if (format === 'int64') return micros.toString();
      return format === 'iso' ? isoTimestamp(micros) : floatSeconds(micros);
    }
    case 'NUMERIC':
    case 'BIGNUMERIC': {
      // DuckDB prints every digit of the scale (1.500000000); BigQuery prints 1.5.
      const text = String(value);
      return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
    }
    case 'DATETIME': {
      const micros = microsOf(value);
      return micros === undefined ? String(value) : civilText(micros, 'T');
    }
    default:
      return String(value);
  }
}

function cellValue(field: TableField, value: DuckDBValue, format: TimestampFormat): unknown {
  if (value === null || value === undefined) return null;
  if (field.type === 'RECORD' && value instanceof DuckDBStructValue) {
    return encodeRecord(field.fields ?? [], value.entries, format);
  }
  return scalarCell(field, value, format);
}

function encodeRecord(
  fields: TableField[],
  entries: Readonly<Record<string, DuckDBValue>>,
  format: TimestampFormat,
): WireRow {
  return {
    f: fields.map((field) => ({ v: encodeField(field, entries[field.name] ?? null, format) })),
  };
}

function encodeField(field: TableField, value: DuckDBValue, format: TimestampFormat): unknown {
  if (field.mode !== 'REPEATED') return cellValue(field, value, format);
  if (!(value instanceof DuckDBListValue)) return [];
  return value.items.map((item) => ({ v: cellValue(field, item, format) }));
}

/** One result row, its values in the order of `fields`. */
export function encodeRow(
  fields: TableField[],
  values: readonly DuckDBValue[],
  format: TimestampFormat,
): WireRow {
  return { f: fields.map((field, i) => ({ v: encodeField(field, values[i] ?? null, format) })) };
}

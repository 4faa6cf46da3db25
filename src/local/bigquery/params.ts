import { invalidQuery } from './sql.js';
import {
  INTEGER_TEXT,
  isNumberText,
  isoTimestamp,
  parseDate,
  parseDatetime,
  parseTime,
  parseTimestamp,
} from './values.js';

/**
 * Query parameters (`@name` and `?`) rendered as typed DuckDB literals. The values were sent by
 * the client in BigQuery's parameter format, so each one is checked against its declared type
 * before it becomes SQL text.
 */

export interface ParameterType {
  type: string;
  arrayType?: ParameterType;
  structTypes?: { name?: string; type: ParameterType }[];
}

export interface ParameterValue {
  value?: unknown;
  arrayValues?: ParameterValue[];
  structValues?: Record<string, ParameterValue>;
}

export interface QueryParameter {
  name?: string;
  parameterType: ParameterType;
  parameterValue?: ParameterValue;
}

const duckTypes: Record<string, string> = {
  STRING: 'VARCHAR',
  INT64: 'BIGINT',
  INTEGER: 'BIGINT',
  FLOAT64: 'DOUBLE',
  FLOAT: 'DOUBLE',
  NUMERIC: 'DECIMAL(38, 9)',
  BIGNUMERIC: 'DECIMAL(38, 18)',
  BOOL: 'BOOLEAN',
  BOOLEAN: 'BOOLEAN',
  TIMESTAMP: 'TIMESTAMPTZ',
  DATETIME: 'TIMESTAMP',
  DATE: 'DATE',
  TIME: 'TIME',
  BYTES: 'BLOB',
  JSON: 'JSON',
  GEOGRAPHY: 'VARCHAR',
};

function quote(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function duckType(type: ParameterType): string {
  const name = type.type.toUpperCase();
  if (name === 'ARRAY') return `${duckType(type.arrayType ?? { type: 'STRING' })}[]`;
  if (name === 'STRUCT') {
    const fields = (type.structTypes ?? []).map(
      (f, i) => `"${(f.name ?? `_field_${i + 1}`).replaceAll('"', '""')}" ${duckType(f.type)}`,
    );
    return `STRUCT(${fields.join(', ')})`;
  }
  const scalar = duckTypes[name];
  if (!scalar) throw invalidQuery(`Query parameter type ${type.type} is not supported.`);
  return scalar;
}

function scalarLiteral(type: string, value: unknown, where: string): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const bad = (): never => {
    throw invalidQuery(`Invalid ${type} value for query parameter ${where}: ${text}`);
  };
  switch (type) {
    case 'STRING':
    case 'GEOGRAPHY':
      return `CAST(${quote(text)} AS VARCHAR)`;
    case 'INT64':
    case 'INTEGER':
      return INTEGER_TEXT.test(text.trim()) ? `CAST(${text.trim()} AS BIGINT)` : bad();
    case 'FLOAT64':
    case 'FLOAT':
      return isNumberText(text) || /^(NaN|[-+]?Infinity)$/i.test(text.trim())
        ? `CAST(${quote(text.trim())} AS DOUBLE)`
        : bad();
    case 'NUMERIC':
    case 'BIGNUMERIC':
      return isNumberText(text) ? `CAST(${quote(text.trim())} AS ${duckTypes[type]})` : bad();
    case 'BOOL':
    case 'BOOLEAN':
      return /^(true|false)$/i.test(text.trim()) ? text.trim().toUpperCase() : bad();
    case 'TIMESTAMP': {
      const micros = parseTimestamp(text);
      return micros === undefined ? bad() : `CAST(${quote(isoTimestamp(micros))} AS TIMESTAMPTZ)`;
    }
    case 'DATETIME': {
      const parsed = parseDatetime(text);
      return parsed === undefined ? bad() : `CAST(${quote(parsed)} AS TIMESTAMP)`;
    }
    case 'DATE': {
      const parsed = parseDate(text);
      return parsed === undefined ? bad() : `CAST(${quote(parsed)} AS DATE)`;
    }
    case 'TIME': {
      const parsed = parseTime(text);
      return parsed === undefined ? bad() : `CAST(${quote(parsed)} AS TIME)`;
    }
    case 'BYTES':
      return `from_base64(${quote(text)})`;
    case 'JSON':
      return `CAST(${quote(text)} AS JSON)`;
    default:
      throw invalidQuery(`Query parameter type ${type} is not supported.`);
  }
}

function literal(type: ParameterType, value: ParameterValue | undefined, where: string): string {
  const name = type.type.toUpperCase();
  if (name === 'ARRAY') {
    const items = value?.arrayValues;
    if (!items) return `CAST(NULL AS ${duckType(type)})`;
    const element = type.arrayType ?? { type: 'STRING' };
    return `CAST([${items.map((item) => literal(element, item, where)).join(', ')}] AS ${duckType(type)})`;
  }
  if (name === 'STRUCT') {
    const values = value?.structValues;
    if (!values) return `CAST(NULL AS ${duckType(type)})`;
    const fields = (type.structTypes ?? []).map((f, i) => {
      const field = f.name ?? `_field_${i + 1}`;
      return `"${field.replaceAll('"', '""')}" := ${literal(f.type, values[field], where)}`;
    });
    return `struct_pack(${fields.join(', ')})`;
  }
  if (value?.value === undefined || value.value === null) {
    return `CAST(NULL AS ${duckType(type)})`;
  }
  return scalarLiteral(name, value.value, where);
}

export function renderParameters(
  parameters: QueryParameter[] | undefined,
  mode: string | undefined,
): { named: Map<string, string>; positional: string[] } {
  const named = new Map<string, string>();
  const positional: string[] = [];
  (parameters ?? []).forEach((parameter, index) => {
    const where = parameter.name ? `@${parameter.name}` : `#${index + 1}`;
    if (!parameter.parameterType?.type) {
      throw invalidQuery(`Query parameter ${where} has no parameterType.`);
    }
    const text = literal(parameter.parameterType, parameter.parameterValue, where);
    if (String(mode ?? '').toUpperCase() === 'POSITIONAL' || !parameter.name) positional.push(text);
    else named.set(parameter.name.toLowerCase(), text);
  });
  return { named, positional };
}

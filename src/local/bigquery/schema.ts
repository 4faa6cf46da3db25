import { ApiError, invalidArgument } from '../http.js';

/**
 * BigQuery table schemas and how they are stored in DuckDB: a RECORD is a STRUCT, a REPEATED
 * field a LIST, and each scalar type gets the DuckDB type that keeps its values exactly.
 */

export type FieldMode = 'NULLABLE' | 'REQUIRED' | 'REPEATED';

export interface TableField {
  name: string;
  type: string;
  mode?: FieldMode;
  description?: string;
  fields?: TableField[];
  [key: string]: unknown;
}

export interface TableSchema {
  fields: TableField[];
}

/** The legacy names the API accepts, mapped to the names it answers with. */
const canonicalType: Record<string, string> = {
  STRING: 'STRING',
  BYTES: 'BYTES',
  INTEGER: 'INTEGER',
  INT64: 'INTEGER',
  FLOAT: 'FLOAT',
  FLOAT64: 'FLOAT',
  NUMERIC: 'NUMERIC',
  DECIMAL: 'NUMERIC',
  BIGNUMERIC: 'BIGNUMERIC',
  BIGDECIMAL: 'BIGNUMERIC',
  BOOLEAN: 'BOOLEAN',
  BOOL: 'BOOLEAN',
  TIMESTAMP: 'TIMESTAMP',
  DATE: 'DATE',
  TIME: 'TIME',
  DATETIME: 'DATETIME',
  GEOGRAPHY: 'GEOGRAPHY',
  JSON: 'JSON',
  RECORD: 'RECORD',
  STRUCT: 'RECORD',
};

const duckScalar: Record<string, string> = {
  STRING: 'VARCHAR',
  BYTES: 'BLOB',
  INTEGER: 'BIGINT',
  FLOAT: 'DOUBLE',
  NUMERIC: 'DECIMAL(38, 9)',
  // DuckDB's widest decimal has 38 digits; BIGNUMERIC values beyond that are rejected on insert.
  BIGNUMERIC: 'DECIMAL(38, 18)',
  BOOLEAN: 'BOOLEAN',
  TIMESTAMP: 'TIMESTAMPTZ',
  DATE: 'DATE',
  TIME: 'TIME',
  DATETIME: 'TIMESTAMP',
  // Kept as well-known text; no spatial functions are offered.
  GEOGRAPHY: 'VARCHAR',
  JSON: 'JSON',
};

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,299}$/;

/** Checks a schema sent by a client and returns it with canonical type and mode names. */
export function normalizeSchema(schema: TableSchema | undefined, where = 'schema'): TableSchema {
  return { fields: normalizeFields(schema?.fields ?? [], where) };
}

function normalizeFields(fields: TableField[], where: string): TableField[] {
  const seen = new Set<string>();
  return fields.map((field) => {
    if (typeof field.name !== 'string' || !FIELD_NAME.test(field.name)) {
      throw invalidArgument(
        `Invalid field name "${String(field.name)}" in ${where}. Fields must contain only letters, numbers, and underscores, start with a letter or underscore, and be at most 300 characters long.`,
      );
    }
    const key = field.name.toLowerCase();
    if (seen.has(key)) throw invalidArgument(`Field ${field.name} already exists in ${where}.`);
    seen.add(key);
    const type = canonicalType[String(field.type ?? '').toUpperCase()];
    if (!type) {
      throw invalidArgument(`Invalid value for type: ${String(field.type)} is not a valid value`);
    }
    const mode = String(field.mode ?? 'NULLABLE').toUpperCase();
    if (mode !== 'NULLABLE' && mode !== 'REQUIRED' && mode !== 'REPEATED') {
      throw invalidArgument(`Invalid value for mode: ${mode} is not a valid value`);
    }
    const normalized: TableField = { ...field, name: field.name, type, mode };
    if (type === 'RECORD') {
      if (!field.fields || field.fields.length === 0) {
        throw invalidArgument(`Field ${field.name} is type RECORD but has no schema.`);
      }
      normalized.fields = normalizeFields(field.fields, `${where}.${field.name}`);
    } else delete normalized.fields;
    return normalized;
  });
}

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The DuckDB type of a field, its mode included. */
export function duckType(field: TableField): string {
  const base =
    field.type === 'RECORD'
      ? `STRUCT(${(field.fields ?? []).map((f) => `${quoteIdent(f.name)} ${duckType(f)}`).join(', ')})`
      : (duckScalar[field.type] ?? 'VARCHAR');
  return field.mode === 'REPEATED' ? `${base}[]` : base;
}

/** Column definitions for CREATE TABLE. REQUIRED inside a RECORD is checked on insert only. */
export function columnDefinitions(schema: TableSchema): string {
  return schema.fields.map(columnDefinition).join(', ');
}

/** One column; a top-level REQUIRED field is also NOT NULL, so DML cannot break it either. */
export function columnDefinition(field: TableField): string {
  const notNull = field.mode === 'REQUIRED' ? ' NOT NULL' : '';
  return `${quoteIdent(field.name)} ${duckType(field)}${notNull}`;
}

/**
 * The structure DuckDB's `from_json` is given for a row. BYTES travel as base64 text and are
 * decoded by `insertExpression`; everything else converts in `from_json` itself.
 */
export function jsonStructure(fields: TableField[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const inner =
      f.type === 'RECORD'
        ? jsonStructure(f.fields ?? [])
        : f.type === 'BYTES'
          ? 'VARCHAR'
          : (duckScalar[f.type] ?? 'VARCHAR');
    out[f.name] = f.mode === 'REPEATED' ? [inner] : inner;
  }
  return out;
}

function hasBytes(field: TableField): boolean {
  return field.type === 'BYTES' || (field.fields ?? []).some(hasBytes);
}

/** The SQL that turns the parsed JSON value `source` into the column's stored value. */
export function insertExpression(source: string, field: TableField): string {
  if (!hasBytes(field)) return source;
  const one = (expr: string): string => {
    if (field.type === 'BYTES') return `from_base64(${expr})`;
    const parts = (field.fields ?? []).map(
      (f) => `${quoteIdent(f.name)} := ${insertExpression(`${expr}.${quoteIdent(f.name)}`, f)}`,
    );
    return `struct_pack(${parts.join(', ')})`;
  };
  if (field.mode === 'REPEATED') return `list_transform(${source}, x -> ${one('x')})`;
  return `CASE WHEN ${source} IS NULL THEN NULL ELSE ${one(source)} END`;
}

/** Finds a field by a dotted path, case-insensitively as BigQuery does. */
export function findField(fields: TableField[], name: string): TableField | undefined {
  const key = name.toLowerCase();
  return fields.find((f) => f.name.toLowerCase() === key);
}

/**
 * Checks that `next` only adds NULLABLE or REPEATED fields and relaxes REQUIRED to NULLABLE,
 * the changes BigQuery allows on a table with data. Returns the new top-level fields.
 */
export function schemaChange(current: TableField[], next: TableField[], path = ''): TableField[] {
  const added: TableField[] = [];
  for (const old of current) {
    const now = findField(next, old.name);
    const where = `${path}${old.name}`;
    if (!now) {
      throw invalidArgument(
        `Provided Schema does not match Table. Field ${where} is missing in new schema`,
      );
    }
    if (now.type !== old.type) {
      throw invalidArgument(
        `Provided Schema does not match Table. Field ${where} has changed type from ${old.type} to ${now.type}`,
      );
    }
    if (old.mode !== now.mode && !(old.mode === 'REQUIRED' && now.mode === 'NULLABLE')) {
      throw invalidArgument(
        `Provided Schema does not match Table. Field ${where} has changed mode from ${old.mode ?? 'NULLABLE'} to ${now.mode ?? 'NULLABLE'}`,
      );
    }
    if (old.type === 'RECORD') {
      const nested = schemaChange(old.fields ?? [], now.fields ?? [], `${where}.`);
      if (nested.length > 0) {
        // DuckDB cannot widen a STRUCT column in place; say so rather than drop the new fields.
        throw new ApiError(
          'UNIMPLEMENTED',
          `Adding fields inside the RECORD ${where} is not supported by the local BigQuery; add a new top-level field instead.`,
        );
      }
    }
  }
  for (const field of next) {
    if (findField(current, field.name)) continue;
    if (field.mode === 'REQUIRED') {
      throw invalidArgument(
        `Provided Schema does not match Table. Cannot add required field ${path}${field.name}`,
      );
    }
    added.push(field);
  }
  return added;
}

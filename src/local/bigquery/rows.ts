import type { TableField } from './schema.js';
import {
  isNumberText,
  isoTimestamp,
  parseDate,
  parseDatetime,
  parseInteger,
  parseTime,
  parseTimestamp,
} from './values.js';

/**
 * Checks one streamed row against a table schema the way `tabledata.insertAll` does, and turns
 * it into the JSON DuckDB's `from_json` reads: every value in the one form its column type
 * accepts.
 */

export interface RowError {
  reason: string;
  location: string;
  debugInfo: string;
  message: string;
}

export interface CheckedRow {
  /** The row as one line of JSON, set when it is valid. */
  line?: string;
  errors: RowError[];
}

const BASE64 = /^(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?$/;
const BOOLEAN_TEXT: Record<string, boolean> = { true: true, false: false, '1': true, '0': false };

type Scalar = { ok: true; value: unknown } | { ok: false; message: string };

function show(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function scalar(field: TableField, value: unknown): Scalar {
  const bad = (what: string): Scalar => ({
    ok: false,
    message: `Cannot convert value to ${what} (bad value): ${show(value)}`,
  });
  switch (field.type) {
    case 'STRING':
    case 'GEOGRAPHY':
      if (typeof value === 'string') return { ok: true, value };
      if (typeof value === 'number' || typeof value === 'boolean')
        return { ok: true, value: String(value) };
      return bad('string');
    case 'INTEGER': {
      const parsed = parseInteger(value);
      return parsed === undefined ? bad('integer') : { ok: true, value: parsed };
    }
    case 'FLOAT':
      if (typeof value === 'number') return { ok: true, value };
      if (typeof value === 'string' && isNumberText(value))
        return { ok: true, value: Number(value) };
      if (typeof value === 'string' && /^(NaN|[-+]?Infinity|[-+]?inf)$/i.test(value.trim()))
        return { ok: true, value: value.trim() };
      return bad('floating point');
    case 'NUMERIC':
    case 'BIGNUMERIC':
      if (typeof value === 'number' && Number.isFinite(value))
        return { ok: true, value: String(value) };
      if (typeof value === 'string' && isNumberText(value))
        return { ok: true, value: value.trim() };
      return bad('numeric');
    case 'BOOLEAN': {
      if (typeof value === 'boolean') return { ok: true, value };
      const parsed =
        typeof value === 'string' ? BOOLEAN_TEXT[value.trim().toLowerCase()] : undefined;
      return parsed === undefined ? bad('boolean') : { ok: true, value: parsed };
    }
    case 'TIMESTAMP': {
      const micros = parseTimestamp(value);
      if (micros !== undefined) return { ok: true, value: isoTimestamp(micros) };
      return {
        ok: false,
        message: `Couldn't convert value to timestamp: Could not parse '${show(value)}' as a timestamp. Required format is YYYY-MM-DD HH:MM[:SS[.SSSSSS]] or YYYY/MM/DD HH:MM[:SS[.SSSSSS]]`,
      };
    }
    case 'DATETIME': {
      const text = parseDatetime(value);
      return text === undefined ? bad('datetime') : { ok: true, value: text };
    }
    case 'DATE': {
      const text = parseDate(value);
      return text === undefined ? bad('date') : { ok: true, value: text };
    }
    case 'TIME': {
      const text = parseTime(value);
      return text === undefined ? bad('time') : { ok: true, value: text };
    }
    case 'BYTES':
      if (typeof value === 'string' && BASE64.test(value)) return { ok: true, value };
      return { ok: false, message: `Could not decode base64 string to bytes: ${show(value)}` };
    case 'JSON':
      if (typeof value !== 'string') return { ok: true, value };
      try {
        return { ok: true, value: JSON.parse(value) as unknown };
      } catch {
        return { ok: false, message: `Invalid JSON value: ${value}` };
      }
    default:
      return { ok: false, message: `Unsupported field type ${field.type}` };
  }
}

/** A schema compiled once per table, so checking a row allocates little beyond its output. */
interface CompiledField {
  field: TableField;
  name: string;
  /** `"name":`, ready to write. */
  key: string;
  lower: string;
  record?: CompiledRecord;
}

interface CompiledRecord {
  fields: CompiledField[];
  exact: Set<string>;
  lower: Map<string, CompiledField>;
}

const compiled = new WeakMap<TableField[], CompiledRecord>();

function compile(fields: TableField[]): CompiledRecord {
  const found = compiled.get(fields);
  if (found) return found;
  const entries = fields.map((field) => ({
    field,
    name: field.name,
    key: `${JSON.stringify(field.name)}:`,
    lower: field.name.toLowerCase(),
    ...(field.type === 'RECORD' ? { record: compile(field.fields ?? []) } : {}),
  }));
  const record: CompiledRecord = {
    fields: entries,
    exact: new Set(entries.map((e) => e.name)),
    lower: new Map(entries.map((e) => [e.lower, e])),
  };
  compiled.set(fields, record);
  return record;
}

const join = (path: string, name: string): string => (path ? `${path}.${name}` : name);

// Quotes, backslashes, control characters and surrogates go through JSON.stringify.
// eslint-disable-next-line no-control-regex
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON text of a checked scalar; calling JSON.stringify for each one costs more than the rest. */
function jsonText(value: unknown): string {
  if (typeof value === 'string')
    return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

class RowChecker {
  readonly errors: RowError[] = [];

  constructor(private readonly ignoreUnknownValues: boolean) {}

  fail(location: string, message: string): undefined {
    this.errors.push({ reason: 'invalid', location, debugInfo: '', message });
    return undefined;
  }

  /** The record as JSON text, or undefined after recording why it is invalid. */
  record(schema: CompiledRecord, value: unknown, path: string): string | undefined {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return this.fail(
        path,
        path ? `This field: ${path} is not a record.` : 'Row is not an object.',
      );
    }
    const input = value as Record<string, unknown>;
    // Field names match case-insensitively, as on BigQuery; exact names take the fast path.
    let renamed: Map<string, string> | undefined;
    for (const key in input) {
      if (schema.exact.has(key)) continue;
      const field = schema.lower.get(key.toLowerCase());
      if (field) (renamed ??= new Map()).set(field.name, key);
      else if (!this.ignoreUnknownValues) this.fail(join(path, key), `no such field: ${key}.`);
    }
    let out = '';
    for (const entry of schema.fields) {
      const key = renamed?.get(entry.name) ?? entry.name;
      const converted = this.field(entry, input[key], path);
      if (converted !== undefined) out += `${out ? ',' : ''}${entry.key}${converted}`;
    }
    return `{${out}}`;
  }

  field(entry: CompiledField, value: unknown, path: string): string | undefined {
    const field = entry.field;
    if (value === undefined || value === null) {
      if (field.mode === 'REQUIRED') {
        const location = join(path, entry.name);
        this.fail(location, `Missing required field: ${location}.`);
      }
      return field.mode === 'REPEATED' ? '[]' : undefined;
    }
    if (field.mode === 'REPEATED') {
      if (!Array.isArray(value)) {
        const location = join(path, entry.name);
        return this.fail(location, `This field: ${location} is a repeated field; supply an array.`);
      }
      const items = value.map((item) => {
        if (item === null || item === undefined) {
          const location = join(path, entry.name);
          return this.fail(location, `Array specified with a null element for field: ${location}.`);
        }
        return this.one(entry, item, path);
      });
      return `[${items.join(',')}]`;
    }
    if (Array.isArray(value)) {
      const location = join(path, entry.name);
      return this.fail(location, `Array specified for non-repeated field: ${location}.`);
    }
    return this.one(entry, value, path);
  }

  one(entry: CompiledField, value: unknown, path: string): string | undefined {
    if (entry.record) return this.record(entry.record, value, join(path, entry.name));
    const result = scalar(entry.field, value);
    return result.ok ? jsonText(result.value) : this.fail(join(path, entry.name), result.message);
  }
}

/**
 * Checks a row and, when it is valid, returns it as one line of JSON in the form the table's
 * `from_json` structure reads.
 */
export function checkRow(
  fields: TableField[],
  json: unknown,
  options: { ignoreUnknownValues?: boolean },
): CheckedRow {
  const checker = new RowChecker(options.ignoreUnknownValues ?? false);
  const line = checker.record(compile(fields), json, '');
  return checker.errors.length === 0 && line ? { line, errors: [] } : { errors: checker.errors };
}

export const STOPPED: RowError = { reason: 'stopped', location: '', debugInfo: '', message: '' };

/**
 * Turns a BigQuery table schema into a checking function, once, at start-up. The function takes
 * a parsed event and returns `undefined` when BigQuery would accept it as a row, or the first
 * problem as `{ field, reason }`, with `field` a path such as `ecommerce.items[0].quantity`.
 *
 * The rules follow what BigQuery's streaming inserts accept: numbers may arrive as numeric
 * strings (the lab sends `item_id` as "1234"), a STRING column takes a number or a boolean and
 * stores its text, and NULL stands for a missing NULLABLE value or an empty REPEATED one.
 */

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;
const INTEGER_TEXT = /^[+-]?\d+$/;
// A civil date and time, optionally with seconds, fraction and a zone: what BigQuery parses.
const TIMESTAMP_TEXT =
  /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d{1,12})?)?)?\s*(?:Z|z|UTC|[+-]\d{1,2}(?::?\d{2})?)?$/;

/**
 * @param {Array<{name: string, type: string, mode?: string, fields?: unknown[]}>} fields
 * @param {{ allowUnknownFields?: boolean }} [options]
 * @returns {(event: unknown) => { field: string, reason: string } | undefined}
 */
export function compileValidator(fields, options = {}) {
  const checkRecord = recordChecker(fields, options.allowUnknownFields === true);
  return (event) => {
    if (!isObject(event))
      return { field: '', reason: `the event must be a JSON object, not ${kind(event)}` };
    const problem = checkRecord(event);
    return problem && { field: problem.path.join(''), reason: problem.reason };
  };
}

function recordChecker(fields, allowUnknown) {
  const byName = new Map();
  const required = [];
  for (const field of fields) {
    byName.set(field.name, columnChecker(field, allowUnknown));
    if (field.mode === 'REQUIRED') required.push(field.name);
  }
  const known = [...byName.keys()].join(', ');
  return (record) => {
    for (const name of required) {
      if (record[name] === undefined || record[name] === null) {
        return { path: [name], reason: 'is required' };
      }
    }
    for (const name in record) {
      const check = byName.get(name);
      if (check === undefined) {
        if (allowUnknown) continue;
        return { path: [name], reason: `is not a column of the table (known: ${known})` };
      }
      const problem = check(record[name]);
      if (problem) {
        problem.path.unshift(
          problem.path.length > 0 && problem.path[0][0] !== '[' ? `${name}.` : name,
        );
        return problem;
      }
    }
    return undefined;
  };
}

function columnChecker(field, allowUnknown) {
  const checkValue = valueChecker(field, allowUnknown);
  if (field.mode !== 'REPEATED') {
    return (value) => (value === null ? undefined : checkValue(value));
  }
  return (value) => {
    if (value === null) return undefined;
    if (!Array.isArray(value)) return { path: [], reason: `expected an array, got ${kind(value)}` };
    for (let i = 0; i < value.length; i += 1) {
      const element = value[i];
      const problem =
        element === null
          ? { path: [], reason: 'a repeated field cannot hold null' }
          : checkValue(element);
      if (problem) {
        const at = `[${i}]`;
        if (problem.path.length > 0 && problem.path[0][0] !== '[') problem.path.unshift(`${at}.`);
        else problem.path.unshift(at);
        return problem;
      }
    }
    return undefined;
  };
}

function valueChecker(field, allowUnknown) {
  switch (field.type) {
    case 'STRING':
      return (v) =>
        typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
          ? undefined
          : mismatch('a string', v);
    case 'INTEGER':
    case 'INT64':
      return (v) => (isInteger(v) ? undefined : mismatch('an integer', v));
    case 'FLOAT':
    case 'FLOAT64':
      return (v) => (isFloat(v) ? undefined : mismatch('a number', v));
    case 'BOOLEAN':
    case 'BOOL':
      return (v) =>
        typeof v === 'boolean' || v === 'true' || v === 'false'
          ? undefined
          : mismatch('true or false', v);
    case 'TIMESTAMP':
      return (v) =>
        isTimestamp(v) ? undefined : mismatch('a timestamp such as "2020-11-16 22:59:59"', v);
    case 'RECORD':
    case 'STRUCT': {
      const checkRecord = recordChecker(field.fields ?? [], allowUnknown);
      return (v) => (isObject(v) ? checkRecord(v) : mismatch('an object', v));
    }
    default:
      throw new Error(`Column ${field.name} has a type this app does not check: ${field.type}.`);
  }
}

function mismatch(expected, value) {
  return { path: [], reason: `expected ${expected}, got ${describe(value)}` };
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isInteger(value) {
  if (typeof value === 'number') return Number.isSafeInteger(value);
  if (typeof value !== 'string' || !INTEGER_TEXT.test(value)) return false;
  if (value.length < 18) return true;
  const big = BigInt(value);
  return big <= INT64_MAX && big >= INT64_MIN;
}

function isFloat(value) {
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'string') return false;
  if (value === 'NaN' || value === 'Infinity' || value === '-Infinity') return true;
  return value.trim() !== '' && Number.isFinite(Number(value));
}

function isTimestamp(value) {
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value !== 'string') return false;
  const m = TIMESTAMP_TEXT.exec(value);
  if (!m) return false;
  const [year, month, day, hour = 0, minute = 0, second = 0] = m
    .slice(1, 7)
    .map((x) => Number(x ?? 0));
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return false;
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function kind(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function describe(value) {
  if (typeof value === 'string') {
    const text = value.length > 40 ? `${value.slice(0, 40)}...` : value;
    return `the string ${JSON.stringify(text)}`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return `${kind(value)} (${value})`;
  return kind(value);
}

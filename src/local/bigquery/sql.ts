import { Dialect, generate, parse, transpile } from '@polyglot-sql/sdk';

import { ApiError } from '../http.js';
import { quoteIdent } from './schema.js';

/**
 * BigQuery Standard SQL to DuckDB. The query is parsed with polyglot's BigQuery dialect, its
 * tree is rewritten where the two engines differ (table names, UNNEST ... WITH OFFSET,
 * ARRAY_AGG ... LIMIT, PARSE_TIMESTAMP, JSON_VALUE, ...), and DuckDB SQL is generated from it.
 * Constructs that would run with a different meaning on DuckDB are refused with invalidQuery.
 * SQL.md, next to this file, lists what is supported.
 */

export interface TableName {
  projectId: string;
  datasetId: string;
  tableId: string;
}

export interface TranslateContext {
  defaultProjectId: string;
  defaultDataset?: { projectId?: string; datasetId: string } | undefined;
  /** Returns the quoted DuckDB name of a table, or throws NOT_FOUND. */
  resolveTable(name: TableName): string;
  /** Parameter values already rendered as DuckDB SQL literals. */
  namedParameters?: Map<string, string>;
  positionalParameters?: string[];
}

export type StatementType = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE';

export interface Translation {
  sql: string;
  statementType: StatementType;
  tables: TableName[];
}

type Node = Record<string, unknown>;

export function invalidQuery(message: string): ApiError {
  return new ApiError('INVALID_ARGUMENT', message, { reason: 'invalidQuery' });
}

const statementTypes: Record<string, StatementType> = {
  select: 'SELECT',
  union: 'SELECT',
  intersect: 'SELECT',
  except: 'SELECT',
  insert: 'INSERT',
  update: 'UPDATE',
  delete: 'DELETE',
};

function parsedOne(sql: string): Node {
  const result = parse(sql, Dialect.BigQuery);
  if (!result.success || !result.ast) {
    throw invalidQuery(`Syntax error: ${result.error ?? 'the query could not be parsed'}`);
  }
  const statements = result.ast as Node[];
  if (statements.length !== 1) {
    throw invalidQuery(
      'Multi-statement queries (scripts) are not supported by the local BigQuery; send one statement per query.',
    );
  }
  return statements[0]!;
}

// Templates for the few nodes the rewriter creates; parsed once so their shape always matches
// what the generator expects.
type TemplateKind = 'column' | 'table' | 'select' | 'alias';
let templates: Record<TemplateKind, Node> | undefined;
function template(kind: TemplateKind): Node {
  templates ??= (() => {
    const statement = parsedOne('SELECT __bq_raw_0__ AS a FROM __bq_raw_0__');
    const select = statement.select as Node;
    const alias = (select.expressions as Node[])[0]!;
    const column = (alias.alias as Node).this as Node;
    const table = ((select.from as Node).expressions as Node[])[0]!;
    return { column, table, select: statement, alias };
  })();
  return structuredClone(templates[kind]);
}

function literalString(node: unknown): string | undefined {
  const literal = (node as Node | undefined)?.literal as Node | undefined;
  if (!literal || !String(literal.literal_type).includes('string')) return undefined;
  return String(literal.value);
}

function sqlString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** BigQuery format elements that DuckDB's strftime/strptime spell differently. */
type FormatUse = 'parse' | 'format' | 'format in UTC';

function duckFormat(format: string, construct: string, use: FormatUse): string {
  const mapped: Record<string, string> = {
    F: '%Y-%m-%d',
    T: '%H:%M:%S',
    D: '%m/%d/%y',
    R: '%H:%M',
    'E*S': '%S.%f',
    E6S: '%S.%f',
    E3S: '%S.%g',
    E4Y: '%Y',
  };
  if (use === 'parse') Object.assign(mapped, { z: '%z', Ez: '%z' });
  // DuckDB prints offsets as `+00`; BigQuery as `+0000` and `+00:00`. In UTC they are constant.
  if (use === 'format in UTC') Object.assign(mapped, { z: '+0000', Ez: '+00:00', Z: 'UTC' });
  const same = new Set('aAbBdHIjmMpSUwWyY%'.split(''));
  return format.replace(/%(E\*S|E\dS|Ez|E4Y|.)/g, (whole, element: string) => {
    const to = mapped[element];
    if (to) return to;
    if (same.has(element)) return whole;
    throw invalidQuery(
      `The format element %${element} in ${construct} is not supported by the local BigQuery.`,
    );
  });
}

/**
 * Generates BigQuery SQL from a rewritten tree and transpiles it to DuckDB: polyglot applies its
 * dialect transforms (function names, UNNEST aliases, string quoting) only when transpiling.
 */
function toDuckDB(statement: Node): string {
  const generated = generate([statement], Dialect.BigQuery);
  if (!generated.success || !generated.sql?.[0]) {
    throw invalidQuery(`The query could not be translated: ${generated.error ?? 'unknown error'}`);
  }
  const result = transpile(generated.sql[0], Dialect.BigQuery, Dialect.DuckDB, {
    unsupportedLevel: 'raise',
  });
  if (!result.success || !result.sql?.[0]) {
    throw invalidQuery(`The query uses SQL the local BigQuery cannot run: ${result.error ?? ''}`);
  }
  return result.sql[0];
}

/**
 * Gives the result columns BigQuery's names: a struct path is named by its last field and an
 * expression without an alias is `f0_`, `f1_`, ... (DuckDB would name it by its text).
 */
function nameOutputs(statement: Node): void {
  let query = statement;
  while (!query.select) {
    const setOp = (query.union ?? query.intersect ?? query.except) as Node | undefined;
    if (!setOp?.left) return;
    query = setOp.left as Node;
  }
  const select = query.select as Node;
  let anonymous = 0;
  select.expressions = (select.expressions as Node[]).map((expression) => {
    const kind = Object.keys(expression)[0];
    if (kind === 'alias' || kind === 'column' || kind === 'star') return expression;
    let name: string;
    if (kind === 'dot') name = String(((expression.dot as Node).field as Node).name);
    else name = `f${anonymous++}_`;
    const alias = template('alias');
    (alias.alias as Node).this = expression;
    ((alias.alias as Node).alias as Node).name = name;
    return alias;
  });
}

class Rewriter {
  private readonly raws: string[] = [];
  private readonly ctes = new Set<string>();
  readonly tables: TableName[] = [];

  constructor(private readonly context: TranslateContext) {}

  run(statement: Node): string {
    this.collectCtes(statement);
    nameOutputs(statement);
    return this.expand(toDuckDB(this.visit(statement) as Node));
  }

  private expand(sql: string): string {
    let out = sql;
    for (let round = 0; round < 50 && out.includes('__bq_raw_'); round++) {
      out = out.replace(/"?__bq_raw_(\d+)__"?/g, (_, n: string) => this.raws[Number(n)] ?? '');
    }
    return out;
  }

  private collectCtes(value: unknown): void {
    if (Array.isArray(value)) value.forEach((v) => this.collectCtes(v));
    else if (value && typeof value === 'object') {
      const node = value as Node;
      if (Array.isArray(node.ctes)) {
        for (const cte of node.ctes as Node[]) {
          const name = (cte.alias as Node | undefined)?.name;
          if (typeof name === 'string') this.ctes.add(name.toLowerCase());
        }
      }
      Object.values(node).forEach((v) => this.collectCtes(v));
    }
  }

  /** A placeholder node whose generated text is replaced by `text` afterwards. */
  private raw(text: string, kind: 'column' | 'table' = 'column'): Node {
    const index = this.raws.push(text) - 1;
    const node = template(kind);
    const inner = node[kind] as Node;
    (inner.name as Node).name = `__bq_raw_${index}__`;
    return node;
  }

  /** DuckDB text of an already rewritten expression. */
  private expr(node: unknown): string {
    const statement = template('select');
    (statement.select as Node).expressions = [node];
    (statement.select as Node).from = null;
    return this.expand(toDuckDB(statement).replace(/^SELECT /, ''));
  }

  private visit(value: unknown, key?: string): unknown {
    if (Array.isArray(value)) return value.map((v) => this.visit(v));
    if (!value || typeof value !== 'object') return value;
    const node = value as Node;
    if (key === 'table' && node.name && typeof node.name === 'object') return this.table(node);
    const out: Node = {};
    for (const [k, v] of Object.entries(node)) out[k] = this.visit(v, k);
    return this.rewrite(out);
  }

  private rewrite(node: Node): Node {
    const keys = Object.keys(node);
    if (keys.length !== 1) return node;
    const kind = keys[0]!;
    const body = node[kind] as Node;
    switch (kind) {
      case 'unnest':
        return body.offset_alias || body.with_ordinality ? this.unnestWithOffset(body) : node;
      case 'array_agg':
        return body.limit ? this.arrayAggLimit(body) : node;
      case 'json_value':
        return this.raw(`json_extract_string(${this.expr(body.this)}, ${this.expr(body.path)})`);
      case 'function':
        return this.func(body) ?? node;
      case 'extract':
        return this.extract(body) ?? node;
      case 'cast':
      case 'safe_cast':
      case 'try_cast':
        return this.cast(kind, body) ?? node;
      case 'column':
        return this.column(body) ?? node;
      case 'placeholder':
        return this.positional();
      case 'literal':
        return this.literal(body) ?? node;
      default:
        return node;
    }
  }

  private table(ref: Node): Node {
    const parts = [ref.catalog, ref.schema, ref.name]
      .map((p) => (p as Node | null)?.name)
      .filter((p): p is string => typeof p === 'string')
      .flatMap((p) => p.split('.'));
    if (parts.length === 1 && this.ctes.has(parts[0]!.toLowerCase())) return ref;
    let name: TableName;
    if (parts.length === 3) {
      name = { projectId: parts[0]!, datasetId: parts[1]!, tableId: parts[2]! };
    } else if (parts.length === 2) {
      name = { projectId: this.context.defaultProjectId, datasetId: parts[0]!, tableId: parts[1]! };
    } else if (parts.length === 1 && this.context.defaultDataset) {
      const dataset = this.context.defaultDataset;
      name = {
        projectId: dataset.projectId ?? this.context.defaultProjectId,
        datasetId: dataset.datasetId,
        tableId: parts[0]!,
      };
    } else {
      throw invalidQuery(
        `Table name "${parts.join('.')}" missing dataset while no default dataset is set in the request.`,
      );
    }
    this.tables.push(name);
    const [schema, table] = this.context
      .resolveTable(name)
      .split('.')
      .map((p) => ({ name: p.slice(1, -1).replaceAll('""', '"'), quoted: true }));
    return { ...ref, catalog: null, schema, name: table };
  }

  private unnestWithOffset(body: Node): Node {
    const element = (body.alias as Node | undefined)?.name;
    const offset = (body.offset_alias as Node | undefined)?.name;
    if (typeof element !== 'string') {
      throw invalidQuery('UNNEST ... WITH OFFSET needs an alias for the elements: UNNEST(x) AS e.');
    }
    const array = this.expr(body.this);
    const offsetName = typeof offset === 'string' ? offset : 'offset';
    const subquery =
      `(SELECT unnest(${array}) AS ${quoteIdent(element)}, ` +
      `generate_subscripts(${array}, 1) - 1 AS ${quoteIdent(offsetName)}) AS ${quoteIdent(`_bq_unnest_${element}`)}`;
    return this.raw(subquery, 'table');
  }

  private arrayAggLimit(body: Node): Node {
    const limit = this.expr(body.limit);
    const inner = this.expr({ array_agg: { ...body, limit: null } });
    return this.raw(`list_slice(${inner}, 1, ${limit})`);
  }

  private func(body: Node): Node | undefined {
    const name = String(body.name).toUpperCase();
    const args = (body.args as Node[] | undefined) ?? [];
    const arg = (i: number): string => this.expr(args[i]);
    const format = (construct: string, use: FormatUse = 'parse'): string => {
      const text = literalString(args[0]);
      if (text === undefined) {
        throw invalidQuery(`${construct} needs a string literal format on the local BigQuery.`);
      }
      return sqlString(duckFormat(text, construct, use));
    };
    const zoned = (construct: string, value: string, zoneIndex: number): string => {
      if (args.length <= zoneIndex) return value;
      return `timezone(${arg(zoneIndex)}, ${value})`;
    };
    const safe = name.startsWith('SAFE.');
    const base = safe ? name.slice(5) : name;
    const parse = safe ? 'try_strptime' : 'strptime';
    switch (base) {
      case 'PARSE_TIMESTAMP': {
        if (args.length > 2) {
          throw invalidQuery(
            'PARSE_TIMESTAMP with a time zone argument is not supported by the local BigQuery.',
          );
        }
        return this.raw(`CAST(${parse}(${arg(1)}, ${format(base)}) AS TIMESTAMPTZ)`);
      }
      case 'TIMESTAMP_DIFF':
      case 'DATETIME_DIFF':
      case 'TIME_DIFF': {
        // BigQuery counts whole units elapsed, which is DuckDB's date_sub (date_diff counts
        // boundaries crossed).
        const unitNode = (args[2]?.var as Node | undefined)?.this;
        const unit = typeof unitNode === 'string' ? unitNode : '';
        if (!/^(MICROSECOND|MILLISECOND|SECOND|MINUTE|HOUR|DAY)$/i.test(unit)) {
          throw invalidQuery(
            `${base} with part ${unit || '?'} is not supported by the local BigQuery.`,
          );
        }
        return this.raw(`date_sub(${sqlString(unit.toLowerCase())}, ${arg(1)}, ${arg(0)})`);
      }
      case 'TIMESTAMP_TRUNC':
      case 'DATETIME_TRUNC':
        if (args.length > 2) {
          throw invalidQuery(`${base} with a time zone is not supported by the local BigQuery.`);
        }
        return this.raw(`date_trunc(${sqlString(this.unit(args[1], base))}, ${arg(0)})`);
      case 'FORMAT':
        return this.format(args);
      case 'DATE_TRUNC':
        // DuckDB truncates a DATE to a TIMESTAMP; BigQuery's DATE_TRUNC answers a DATE.
        if (args.length !== 2) return undefined;
        return this.raw(
          `CAST(date_trunc(${sqlString(this.unit(args[1], base))}, ${arg(0)}) AS DATE)`,
        );
      case 'DATE_ADD':
      case 'DATE_SUB':
        // DuckDB's DATE + INTERVAL is a TIMESTAMP; BigQuery keeps a DATE.
        if (args.length !== 2) return undefined;
        return this.raw(`CAST(${arg(0)} ${base === 'DATE_ADD' ? '+' : '-'} ${arg(1)} AS DATE)`);
      case 'TIMESTAMP_MILLIS':
        return this.raw(`CAST(make_timestamp(CAST(${arg(0)} AS BIGINT) * 1000) AS TIMESTAMPTZ)`);
      case 'TIMESTAMP_MICROS':
        return this.raw(`CAST(make_timestamp(CAST(${arg(0)} AS BIGINT)) AS TIMESTAMPTZ)`);
      case 'PARSE_DATETIME':
        return this.raw(`CAST(${parse}(${arg(1)}, ${format(base)}) AS TIMESTAMP)`);
      case 'PARSE_DATE':
        return this.raw(`CAST(${parse}(${arg(1)}, ${format(base)}) AS DATE)`);
      case 'FORMAT_TIMESTAMP':
        return this.raw(
          `strftime(${zoned(base, arg(1), 2)}, ${format(base, args.length > 2 ? 'format' : 'format in UTC')})`,
        );
      case 'FORMAT_DATETIME':
      case 'FORMAT_DATE':
      case 'FORMAT_TIME':
        return this.raw(`strftime(${arg(1)}, ${format(base, 'format')})`);
      case 'REGEXP_CONTAINS':
        return this.raw(`regexp_matches(${arg(0)}, ${arg(1)})`);
      case 'REGEXP_EXTRACT': {
        const pattern = literalString(args[1]);
        if (pattern === undefined || args.length > 2) {
          throw invalidQuery(
            'REGEXP_EXTRACT needs a literal pattern and no position argument on the local BigQuery.',
          );
        }
        const group = /\((?!\?)/.test(pattern.replace(/\\./g, '')) ? 1 : 0;
        return this.raw(
          `CASE WHEN regexp_matches(${arg(0)}, ${arg(1)}) THEN regexp_extract(${arg(0)}, ${arg(1)}, ${group}) END`,
        );
      }
      default:
        return undefined;
    }
  }

  private literal(body: Node): Node | undefined {
    const value = String(body.value);
    // A TIMESTAMP literal is absolute time: DuckDB's TIMESTAMPTZ, not its civil TIMESTAMP.
    if (body.literal_type === 'timestamp')
      return this.raw(`CAST(${sqlString(value)} AS TIMESTAMPTZ)`);
    // 1.5 is a FLOAT64 in BigQuery and a DECIMAL in DuckDB.
    if (body.literal_type === 'number' && /[.eE]/.test(value)) {
      return this.raw(`CAST(${sqlString(value)} AS DOUBLE)`);
    }
    return undefined;
  }

  /** BigQuery's FORMAT as DuckDB's printf, for the elements both spell the same. */
  private format(args: Node[]): Node {
    const text = literalString(args[0]);
    const elements = text?.match(/%[^a-zA-Z%]*[a-zA-Z%]/g) ?? [];
    const bad = elements.find((e) => !/^%[-+ #0]*\d*(\.\d+)?[disfxXoeEgG%]$/.test(e));
    if (text === undefined || bad) {
      throw invalidQuery(
        `FORMAT ${bad ? `with ${bad}` : 'with a non-literal format'} is not supported by the local BigQuery.`,
      );
    }
    return this.raw(`printf(${args.map((a) => this.expr(a)).join(', ')})`);
  }

  /** The text of a date part argument such as `MONTH`. */
  private unit(node: Node | undefined, construct: string): string {
    const part = (node?.var as Node | undefined)?.this ?? (node?.column as Node | undefined)?.name;
    const text = typeof part === 'string' ? part : (part as Node | undefined)?.name;
    if (typeof text !== 'string' || !/^[A-Za-z]+$/.test(text)) {
      throw invalidQuery(`${construct} needs a date part such as DAY or MONTH.`);
    }
    if (/^WEEK$/i.test(text) || text.includes('(')) {
      throw invalidQuery(
        `${construct} with WEEK is not supported by the local BigQuery; use ISOWEEK.`,
      );
    }
    return /^ISOWEEK$/i.test(text) ? 'week' : text.toLowerCase();
  }

  private extract(body: Node): Node | undefined {
    const raw = body.field;
    const field = (
      typeof raw === 'string'
        ? raw
        : typeof raw === 'object' && raw
          ? `${Object.keys(raw)[0] ?? ''}:${String(Object.values(raw)[0])}`
          : ''
    ).toUpperCase();
    if (field === 'DAYOFWEEK') return this.raw(`(dayofweek(${this.expr(body.this)}) + 1)`);
    if (field === 'WEEK')
      return this.raw(`CAST(strftime(${this.expr(body.this)}, '%U') AS BIGINT)`);
    if (field === 'DATE' || field === 'TIME' || field === 'DATETIME') {
      const type = field === 'DATETIME' ? 'TIMESTAMP' : field;
      return this.raw(`CAST(${this.expr(body.this)} AS ${type})`);
    }
    if (field === 'CUSTOM:ISOWEEK') return this.raw(`week(${this.expr(body.this)})`);
    if (field === 'ISOYEAR' || field === 'CUSTOM:ISOYEAR') {
      return this.raw(`isoyear(${this.expr(body.this)})`);
    }
    if (field.startsWith('WEEKWITHMODIFIER') || field.startsWith('CUSTOM:')) {
      throw invalidQuery(
        `EXTRACT(${field}) is not supported by the local BigQuery; use WEEK or ISOWEEK.`,
      );
    }
    return undefined;
  }

  private cast(kind: string, body: Node): Node | undefined {
    const to = body.to as Node | undefined;
    let target: string | undefined;
    if (to?.data_type === 'timestamp') target = 'TIMESTAMPTZ';
    if (to?.data_type === 'decimal' && to.precision == null) target = 'DECIMAL(38, 9)';
    if (to?.data_type === 'custom' && String(to.name).toUpperCase() === 'BIGNUMERIC') {
      target = 'DECIMAL(38, 18)';
    }
    if (!target) return undefined;
    const fn = kind === 'cast' ? 'CAST' : 'TRY_CAST';
    return this.raw(`${fn}(${this.expr(body.this)} AS ${target})`);
  }

  private column(body: Node): Node | undefined {
    const name = (body.name as Node | undefined)?.name;
    if (typeof name !== 'string' || !name.startsWith('@') || (body.name as Node).quoted) {
      return undefined;
    }
    if (name.startsWith('@@')) {
      throw invalidQuery(`System variable ${name} is not supported by the local BigQuery.`);
    }
    const value = this.context.namedParameters?.get(name.slice(1).toLowerCase());
    if (value === undefined) throw invalidQuery(`Query parameter '${name.slice(1)}' not found`);
    return this.raw(value);
  }

  private positionalIndex = 0;
  private positional(): Node {
    const value = this.context.positionalParameters?.[this.positionalIndex++];
    if (value === undefined) {
      throw invalidQuery(
        `Query has positional parameter ${this.positionalIndex} but the request did not provide a value for it.`,
      );
    }
    return this.raw(value);
  }
}

export function translate(sql: string, context: TranslateContext): Translation {
  if (/^\s*#legacySQL/i.test(sql)) {
    throw invalidQuery('Legacy SQL is not supported by the local BigQuery; use Standard SQL.');
  }
  const statement = parsedOne(sql);
  const kind = Object.keys(statement)[0] ?? '';
  const statementType = statementTypes[kind];
  if (!statementType) {
    throw invalidQuery(
      `Statement ${kind.toUpperCase().replaceAll('_', ' ')} is not supported by the local BigQuery; create tables and datasets through the API, and query with SELECT, INSERT, UPDATE or DELETE.`,
    );
  }
  const rewriter = new Rewriter(context);
  const translated = rewriter.run(statement);
  return { sql: translated, statementType, tables: rewriter.tables };
}

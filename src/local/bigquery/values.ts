/**
 * Parsing and printing of BigQuery's temporal and numeric text forms, shared by streaming
 * inserts (input) and result rows (output). Timestamps are carried as microseconds since the
 * epoch in a bigint so no precision is lost on the way.
 */

const DATE_PART = String.raw`(\d{4})[-/](\d{1,2})[-/](\d{1,2})`;
const TIME_PART = String.raw`(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?`;
const ZONE_PART = String.raw`\s*(Z|UTC|[+-]\d{1,2}(?::?\d{2})?)?`;
const TIMESTAMP_TEXT = new RegExp(`^${DATE_PART}(?:[Tt ]${TIME_PART})?${ZONE_PART}$`, 'i');
const DATETIME_TEXT = new RegExp(`^${DATE_PART}(?:[Tt ]${TIME_PART})?$`);
const DATE_TEXT = new RegExp(`^${DATE_PART}$`);
const TIME_TEXT = new RegExp(`^${TIME_PART}$`);
const NUMBER_TEXT = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
export const INTEGER_TEXT = /^[-+]?\d+$/;

const MIN_MICROS = -62135596800000000n; // 0001-01-01 00:00:00 UTC
const MAX_MICROS = 253402300799999999n; // 9999-12-31 23:59:59.999999 UTC
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

export function isNumberText(text: string): boolean {
  return NUMBER_TEXT.test(text.trim());
}

function fraction(text: string | undefined): number {
  return text ? Number(text.slice(0, 6).padEnd(6, '0')) : 0;
}

function validDate(y: number, m: number, d: number): boolean {
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  const days = new Date(Date.UTC(2000, m, 0)).getUTCDate(); // 29 for February
  if (m === 2 && d === 29) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  return d <= days;
}

function civilMicros(parts: (string | undefined)[]): bigint | undefined {
  const n = (i: number): number => Number(parts[i] ?? 0);
  const [y, mo, d, h, mi, s] = [n(0), n(1), n(2), n(3), n(4), n(5)];
  if (!validDate(y, mo, d) || h > 23 || mi > 59 || s > 59) return undefined;
  const at = new Date(0);
  at.setUTCFullYear(y, mo - 1, d);
  at.setUTCHours(h, mi, s, 0);
  return BigInt(at.getTime()) * 1000n + BigInt(fraction(parts[6]));
}

function zoneMicros(zone: string | undefined): bigint | undefined {
  if (!zone || /^(z|utc)$/i.test(zone)) return 0n;
  const m = /^([+-])(\d{1,2})(?::?(\d{2}))?$/.exec(zone);
  if (!m) return undefined;
  const minutes = Number(m[2]) * 60 + Number(m[3] ?? 0);
  if (minutes > 14 * 60) return undefined;
  return BigInt((m[1] === '-' ? -1 : 1) * minutes) * 60_000_000n;
}

/** A TIMESTAMP given as text (civil time with an optional zone) or as epoch seconds. */
export function parseTimestamp(value: unknown): bigint | undefined {
  let micros: bigint | undefined;
  if (typeof value === 'number') {
    micros = Number.isFinite(value) ? BigInt(Math.round(value * 1e6)) : undefined;
  } else if (typeof value === 'string') {
    const text = value.trim();
    if (NUMBER_TEXT.test(text)) return parseTimestamp(Number(text));
    const m = TIMESTAMP_TEXT.exec(text);
    if (!m) return undefined;
    const civil = civilMicros(m.slice(1, 8));
    const zone = zoneMicros(m[8]);
    if (civil === undefined || zone === undefined) return undefined;
    micros = civil - zone;
  }
  if (micros === undefined || micros < MIN_MICROS || micros > MAX_MICROS) return undefined;
  return micros;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

function splitMicros(micros: bigint): { date: Date; micros: number } {
  let ms = micros / 1000n;
  let rest = micros % 1000n;
  if (rest < 0n) {
    rest += 1000n;
    ms -= 1n;
  }
  const date = new Date(Number(ms));
  return { date, micros: date.getUTCMilliseconds() * 1000 + Number(rest) };
}

/** `YYYY-MM-DD HH:MM:SS[.ffffff]` for microseconds since the epoch, in UTC. */
export function civilText(micros: bigint, separator = ' '): string {
  const { date, micros: sub } = splitMicros(micros);
  const day = `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
  const time = `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
  const frac = sub === 0 ? '' : `.${pad(sub, 6)}`;
  return `${day}${separator}${time}${frac}`;
}

/** The RFC 3339 form DuckDB reads back into a TIMESTAMPTZ. */
export function isoTimestamp(micros: bigint): string {
  return `${civilText(micros, 'T')}Z`;
}

/** BigQuery's float-seconds rendering of a TIMESTAMP, such as `1.605567599E9`. */
export function floatSeconds(micros: bigint): string {
  return (Number(micros) / 1e6).toExponential().replace('e+', 'E').replace('e-', 'E-');
}

/** A DATETIME as `YYYY-MM-DD HH:MM:SS[.ffffff]`, or undefined when it is not one. */
export function parseDatetime(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = DATETIME_TEXT.exec(value.trim());
  if (!m) return undefined;
  const micros = civilMicros(m.slice(1, 8));
  return micros === undefined ? undefined : civilText(micros);
}

export function parseDate(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = DATE_TEXT.exec(value.trim());
  if (!m || !validDate(Number(m[1]), Number(m[2]), Number(m[3]))) return undefined;
  return `${m[1]}-${pad(Number(m[2]))}-${pad(Number(m[3]))}`;
}

export function parseTime(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const m = TIME_TEXT.exec(value.trim());
  if (!m) return undefined;
  const [h, mi, s] = [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
  if (h > 23 || mi > 59 || s > 59) return undefined;
  const frac = m[4] ? `.${m[4].slice(0, 6).padEnd(6, '0')}` : '';
  return `${pad(h)}:${pad(mi)}:${pad(s)}${frac}`;
}

/** An INT64 from a JSON number or a decimal string; undefined when it is not one. */
export function parseInteger(value: unknown): number | string | undefined {
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) return undefined;
    return Number.isSafeInteger(value) ? value : BigInt(value).toString();
  }
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (!INTEGER_TEXT.test(text)) return undefined;
  // Up to 15 digits is always a safe integer; only longer text needs BigInt's range check.
  if (text.length <= 15) return Number(text);
  const big = BigInt(text);
  if (big < INT64_MIN || big > INT64_MAX) return undefined;
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(big)
    : big.toString();
}

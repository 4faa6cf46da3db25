/**
 * The pure part of the template: a Pub/Sub message becomes a BigQuery row, or a record for the
 * dead-letter table explaining why it could not. No I/O here, so every rule is unit-tested.
 */

export type JsonRow = Record<string, unknown>;

/** The fields of a pulled Pub/Sub message the pipeline uses. */
export interface PipelineMessage {
  /** Also the row's `insertId`, so a redelivered message adds no duplicate row. */
  messageId: string;
  data: Buffer;
  attributes: Record<string, string>;
  /** Milliseconds since the epoch, from the message's publish time. */
  publishTimeMs: number;
}

export type RowResult = { kind: 'row'; row: JsonRow } | { kind: 'failed'; error: FailureCause };

export interface FailureCause {
  message: string;
  stacktrace: string;
}

/** One row of the dead-letter table, with the schema the template gives it. */
export interface DeadLetterRow extends JsonRow {
  timestamp: string;
  payloadString: string;
  payloadBytes: string;
  attributes: { key: string; value: string }[];
  errorMessage: string;
  stacktrace: string;
}

/** The dead-letter table's schema, exactly as Google's template creates it. */
export const DEAD_LETTER_SCHEMA = {
  fields: [
    { name: 'timestamp', type: 'TIMESTAMP', mode: 'REQUIRED' },
    { name: 'payloadString', type: 'STRING', mode: 'REQUIRED' },
    { name: 'payloadBytes', type: 'BYTES', mode: 'REQUIRED' },
    {
      name: 'attributes',
      type: 'RECORD',
      mode: 'REPEATED',
      fields: [
        { name: 'key', type: 'STRING', mode: 'NULLABLE' },
        { name: 'value', type: 'STRING', mode: 'NULLABLE' },
      ],
    },
    { name: 'errorMessage', type: 'STRING', mode: 'NULLABLE' },
    { name: 'stacktrace', type: 'STRING', mode: 'NULLABLE' },
  ],
};

/**
 * Parses a JSON text into a row. Object keys become column names as they are; nested objects
 * become RECORD values and arrays REPEATED values, which is exactly how `insertAll` reads a JSON
 * row, so the object is passed on unchanged. Anything but a JSON object fails.
 */
export function jsonToRow(text: string): RowResult {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return failed(`Payload is not valid JSON: ${describe(error)}`, error);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
    return failed(
      `Payload is JSON ${kind}, not a JSON object: each message must be one object, one row.`,
    );
  }
  return { kind: 'row', row: value as JsonRow };
}

export function deadLetterRow(
  message: PipelineMessage,
  cause: FailureCause,
  payload: string = message.data.toString('utf8'),
  now: Date = new Date(),
): DeadLetterRow {
  return {
    timestamp: now.toISOString(),
    payloadString: payload,
    payloadBytes: Buffer.from(payload, 'utf8').toString('base64'),
    attributes: Object.entries(message.attributes).map(([key, value]) => ({ key, value })),
    errorMessage: cause.message,
    stacktrace: cause.stacktrace,
  };
}

/** One problem BigQuery reported for one row of an `insertAll`. */
export interface InsertError {
  reason?: string | null;
  message?: string | null;
  location?: string | null;
}

/**
 * Reasons BigQuery gives for a row that may succeed when sent again: the service was busy, or
 * the row was fine but not inserted because another row of the request failed (`stopped`).
 */
const TRANSIENT_REASONS = new Set([
  'backendError',
  'internalError',
  'rateLimitExceeded',
  'timeout',
  'stopped',
  'quotaExceeded',
]);

export function isTransientInsertFailure(errors: InsertError[]): boolean {
  if (errors.length === 0) return true;
  return errors.every((e) => TRANSIENT_REASONS.has(e.reason ?? ''));
}

/**
 * The dead-letter `errorMessage` for a row BigQuery rejected: like the template, BigQuery's insert
 * errors as JSON, each with its `reason` (`invalid`, ...) and message.
 */
export function insertErrorMessage(errors: InsertError[]): string {
  return JSON.stringify({
    errors: errors.map((e) => ({
      reason: e.reason ?? 'invalid',
      ...(e.location ? { location: e.location } : {}),
      message: e.message ?? '',
    })),
  });
}

export function failure(message: string, error?: unknown): FailureCause {
  return { message, stacktrace: stackOf(error) ?? `Error: ${message}` };
}

function failed(message: string, error?: unknown): RowResult {
  return { kind: 'failed', error: failure(message, error) };
}

function stackOf(error: unknown): string | undefined {
  return error instanceof Error ? error.stack : undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

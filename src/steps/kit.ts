import { LabError, errorMessage, isAlreadyExists, isNotFound } from '../errors.js';
import type { Logger } from '../log.js';
import type { Check } from './types.js';

/**
 * Small tools the step modules share: create-or-keep, delete-if-present, checks that turn an
 * exception into a crossed line, and polling with a deadline.
 */

export type Change = 'created' | 'kept';

/** Creates a resource; one that already exists is kept, which makes `ensure` idempotent. */
export async function createOrKeep(
  log: Logger,
  what: string,
  create: () => Promise<unknown>,
): Promise<Change> {
  try {
    await create();
    log.info(`created ${what}`);
    return 'created';
  } catch (error) {
    if (isAlreadyExists(error)) {
      log.debug(`${what} already exists`);
      return 'kept';
    }
    throw new LabError(`Could not create ${what}: ${errorMessage(error)}`, { cause: error });
  }
}

/** Deletes a resource; one that is already gone is fine. */
export async function deleteIfPresent(
  log: Logger,
  what: string,
  remove: () => Promise<unknown>,
): Promise<void> {
  try {
    await remove();
    log.info(`deleted ${what}`);
  } catch (error) {
    if (isNotFound(error)) {
      log.debug(`${what} was already gone`);
      return;
    }
    throw new LabError(`Could not delete ${what}: ${errorMessage(error)}`, { cause: error });
  }
}

/** Whether a lookup finds the resource: false on NOT_FOUND, any other failure rethrown. */
export async function exists(lookup: () => Promise<unknown>): Promise<boolean> {
  try {
    await lookup();
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

/**
 * A check whose probe returns its detail line when it passes, and throws (any error) with the
 * reason when it fails.
 */
export async function check(name: string, probe: () => Promise<string>): Promise<Check> {
  try {
    return { name, ok: true, detail: await probe() };
  } catch (error) {
    return { name, ok: false, detail: errorMessage(error) };
  }
}

/** A failed expectation inside a check: its message becomes the check's detail. */
export function expectThat(condition: boolean, failure: string): void {
  if (!condition) throw new Error(failure);
}

/**
 * Polls until `probe` returns a value, the deadline passes (a LabError naming `what`), or the
 * signal aborts.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  options: { timeoutMs: number; intervalMs?: number; signal?: AbortSignal },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let interval = options.intervalMs ?? 250;
  for (;;) {
    options.signal?.throwIfAborted();
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new LabError(
        `Timed out after ${Math.round(options.timeoutMs / 1000)} s waiting for ${what}.`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
    interval = Math.min(interval * 1.5, 5_000);
  }
}

/** Rows as an aligned text table, for query results. */
export function formatTable(rows: Array<Record<string, unknown>>, columns?: string[]): string[] {
  if (rows.length === 0) return ['(no rows)'];
  const names = columns ?? Object.keys(rows[0]!);
  const cells = rows.map((row) => names.map((name) => cellText(row[name])));
  const widths = names.map((name, i) => Math.max(name.length, ...cells.map((c) => c[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(names), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)];
}

function cellText(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (value instanceof Date) return value.toISOString();
  // BigQuery's client wraps timestamps and dates in objects that carry a `value` string.
  if (typeof value === 'object' && 'value' in value) return cellText(value.value);
  if (typeof value === 'string') return value;
  // Four decimals are plenty to read a confidence, a box edge or a revenue in a table.
  if (typeof value === 'number' && !Number.isInteger(value))
    return String(Number(value.toFixed(4)));
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return value.toString();
  }
  return JSON.stringify(value) ?? '';
}

import { Script, createContext } from 'node:vm';
import type { Context } from 'node:vm';

/**
 * Runs a learner's JavaScript UDF in a `node:vm` context of its own.
 *
 * What the UDF can reach: the language's built-ins (JSON, Math, Date, String, RegExp, ...) and a
 * `console` whose methods do nothing. What it cannot: `require`, `import`, `process`, timers,
 * files and the network, none of which exist in the context; `eval` and `new Function` are turned
 * off. Only strings cross the boundary (a batch goes in as one JSON text and comes back as one),
 * so no object of the host is ever reachable from the UDF's code.
 *
 * Limits: each call may run for `timeoutMs` before it is interrupted and reported as a failure;
 * memory is bounded by the worker thread that hosts the sandbox (see `udf.ts`). `node:vm` is
 * isolation for mistakes, not a security boundary against hostile code: run only UDFs you trust,
 * as on Google, where a UDF runs with the job's service account.
 */

/** What one call returned: a JSON string, `null` to drop the message, or the failure. */
export type UdfOutcome =
  | { kind: 'output'; json: string }
  | { kind: 'dropped' }
  | { kind: 'failed'; message: string; stacktrace: string };

// Runs inside the context. `__batch` holds the inputs; progress and outcomes stay in context
// globals, so a batch interrupted by the timeout can be resumed after the call that hung.
const RUNNER = `
globalThis.__run = function (name) {
  const fn = globalThis[name];
  const inputs = globalThis.__batch;
  const results = globalThis.__results;
  for (let i = globalThis.__index; i < inputs.length; i = ++globalThis.__index) {
    try {
      const out = fn(inputs[i]);
      if (out === null || out === undefined || out === '') results.push(null);
      else if (typeof out === 'string') results.push(out);
      else results.push({ e: 'The UDF must return a JSON string (or null to drop the message), '
        + 'not a value of type ' + typeof out + '.', s: '' });
    } catch (error) {
      const message = error instanceof Error ? error.name + ': ' + error.message : String(error);
      const stack = error instanceof Error && error.stack ? String(error.stack) : message;
      results.push({ e: message, s: stack });
    }
  }
};
globalThis.console = { log() {}, info() {}, warn() {}, error() {}, debug() {} };
`;

export interface SandboxOptions {
  /** Shown in stack traces, such as the UDF's gs:// path. */
  filename: string;
  functionName: string;
  timeoutMs: number;
}

export class UdfSandbox {
  private readonly context: Context;
  private readonly callScript: Script;
  private readonly readScript = new Script('JSON.stringify(globalThis.__results)');
  private readonly startScript = new Script(
    'globalThis.__batch = JSON.parse(globalThis.__input); globalThis.__results = []; ' +
      'globalThis.__index = 0; globalThis.__input = undefined;',
  );

  /** Compiles the UDF; throws with the reason when it doesn't compile or lacks the function. */
  constructor(
    source: string,
    private readonly options: SandboxOptions,
  ) {
    this.context = createContext(Object.create(null) as object, {
      name: 'udf',
      codeGeneration: { strings: false, wasm: false },
      microtaskMode: 'afterEvaluate',
    });
    new Script(RUNNER, { filename: 'udf-runner.js' }).runInContext(this.context);
    try {
      new Script(source, { filename: options.filename }).runInContext(this.context, {
        timeout: options.timeoutMs,
      });
    } catch (error) {
      // Errors raised inside the context are of its own classes: describe, don't rethrow.
      const e = error as { name?: unknown; message?: unknown } | null;
      const name = typeof e?.name === 'string' ? e.name : 'Error';
      const message = typeof e?.message === 'string' ? e.message : 'the script failed';
      throw new Error(`${options.filename} does not run: ${name}: ${message}`, { cause: error });
    }
    const kind = new Script(
      `typeof globalThis[${JSON.stringify(options.functionName)}]`,
    ).runInContext(this.context) as string;
    if (kind !== 'function') {
      throw new Error(
        `${options.filename} defines no function named "${options.functionName}" ` +
          `(found ${kind}). Check javascriptTextTransformFunctionName.`,
      );
    }
    this.callScript = new Script(`globalThis.__run(${JSON.stringify(options.functionName)})`, {
      filename: 'udf-call.js',
    });
  }

  /** Calls the UDF once per input, in order. */
  run(inputs: string[]): UdfOutcome[] {
    const outcomes: UdfOutcome[] = [];
    let start = 0;
    while (start < inputs.length) {
      const batch = inputs.slice(start);
      const done = this.runFrom(batch);
      outcomes.push(...done.outcomes);
      start += done.outcomes.length;
      if (done.timedOut) {
        // The call at the front of this run had the whole time limit to itself.
        outcomes.push({
          kind: 'failed',
          message: `UDF call exceeded the time limit of ${this.options.timeoutMs} ms.`,
          stacktrace: `Error: ${this.options.functionName} was interrupted after ${this.options.timeoutMs} ms`,
        });
        start += 1;
      }
    }
    return outcomes;
  }

  /**
   * Runs the calls of one batch until they finish or the time limit interrupts one. When the
   * limit interrupts a call that was not the first, that call is run again at the front of the
   * next batch so that every call gets the full limit.
   */
  private runFrom(inputs: string[]): { outcomes: UdfOutcome[]; timedOut: boolean } {
    const context = this.context as Record<string, unknown>;
    context.__input = JSON.stringify(inputs);
    this.startScript.runInContext(this.context);
    try {
      this.callScript.runInContext(this.context, { timeout: this.options.timeoutMs });
      return { outcomes: this.results(), timedOut: false };
    } catch (error) {
      if (!isTimeout(error)) throw error;
      const outcomes = this.results();
      return { outcomes, timedOut: outcomes.length === 0 };
    }
  }

  private results(): UdfOutcome[] {
    const text = this.readScript.runInContext(this.context) as string;
    const raw = JSON.parse(text) as (string | null | { e: string; s: string })[];
    return raw.map((value) => {
      if (value === null) return { kind: 'dropped' };
      if (typeof value === 'string') return { kind: 'output', json: value };
      return { kind: 'failed', message: value.e, stacktrace: value.s || value.e };
    });
  }
}

function isTimeout(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { code?: unknown }).code === 'ERR_SCRIPT_EXECUTION_TIMEOUT'
  );
}

import { Worker } from 'node:worker_threads';

import type { Storage } from '@google-cloud/storage';

import type { Logger } from '../../log.js';
import { parseGcsPath } from '../pubsub-to-bigquery/parameters.js';
import type { UdfOutcome } from './sandbox.js';
import type { WorkerReply, WorkerRequest } from './worker.js';

/**
 * The template's JavaScript UDF: `functionName(jsonString) -> jsonString`, read from Cloud
 * Storage, run in a sandbox (see `sandbox.ts`) inside a worker thread, and read again every
 * `reloadIntervalMinutes` when that is above 0.
 *
 * Limits: each call may run `timeoutMs` (1 s by default) before it fails; the worker's heap is
 * capped at `memoryMb` (128 MiB by default), and a UDF that exceeds it fails the call that did
 * it, after which a fresh worker takes over. A failed call sends its message to the dead-letter
 * table; a call that returns null, undefined or '' drops its message.
 */

export interface UdfConfig {
  /** Shown in errors and stack traces, normally the gs:// path. */
  filename: string;
  functionName: string;
  /** 0 reads the file once. */
  reloadIntervalMinutes: number;
  /** Reads the current source text. */
  read: () => Promise<string>;
  log: Logger;
  timeoutMs?: number;
  memoryMb?: number;
}

export const DEFAULT_UDF_TIMEOUT_MS = 1000;
export const DEFAULT_UDF_MEMORY_MB = 128;

/** Reads a UDF source from a gs:// path with the official Storage client. */
export function gcsReader(storage: Storage, gcsPath: string): () => Promise<string> {
  const { bucket, object } = parseGcsPath(gcsPath);
  return async () => {
    const [contents] = await storage.bucket(bucket).file(object).download();
    return contents.toString('utf8');
  };
}

export class JavaScriptUdf {
  private worker: Worker | undefined;
  private source = '';
  private nextId = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private reloadTimer: NodeJS.Timeout | undefined;
  private pending:
    { id: number; resolve: (reply: WorkerReply) => void; reject: (e: Error) => void } | undefined;
  private readonly timeoutMs: number;
  private readonly memoryMb: number;

  private constructor(private readonly config: UdfConfig) {
    this.timeoutMs = config.timeoutMs ?? DEFAULT_UDF_TIMEOUT_MS;
    this.memoryMb = config.memoryMb ?? DEFAULT_UDF_MEMORY_MB;
  }

  /** Reads and compiles the UDF; fails with the reason when it can't be read or compiled. */
  static async start(config: UdfConfig): Promise<JavaScriptUdf> {
    const udf = new JavaScriptUdf(config);
    let source: string;
    try {
      source = await config.read();
    } catch (error) {
      throw new Error(`Could not read the UDF ${config.filename}: ${describe(error)}`, {
        cause: error,
      });
    }
    await udf.load(source);
    if (config.reloadIntervalMinutes > 0) {
      udf.reloadTimer = setInterval(() => void udf.reload(), config.reloadIntervalMinutes * 60_000);
      udf.reloadTimer.unref();
    }
    return udf;
  }

  /** Calls the UDF on each input, in order; never rejects. */
  async transform(inputs: string[]): Promise<UdfOutcome[]> {
    if (inputs.length === 0) return [];
    return this.serial(async () => {
      try {
        return await this.run(inputs);
      } catch (error) {
        // The worker died (memory) or stopped answering: find the call that did it.
        this.config.log.warn('UDF worker stopped: %s', describe(error));
        if (inputs.length === 1) return [crashed(error)];
        const outcomes: UdfOutcome[] = [];
        for (const input of inputs) {
          try {
            outcomes.push(...(await this.run([input])));
          } catch (single) {
            outcomes.push(crashed(single));
          }
        }
        return outcomes;
      }
    });
  }

  /** Reads the source again and switches to it when it changed and compiles. */
  async reload(): Promise<boolean> {
    try {
      const source = await this.config.read();
      if (source === this.source) return false;
      await this.serial(() => this.load(source));
      this.config.log.info('reloaded the UDF from %s', this.config.filename);
      return true;
    } catch (error) {
      this.config.log.warn('kept the previous UDF: %s', describe(error));
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.reloadTimer) clearInterval(this.reloadTimer);
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }

  private async load(source: string): Promise<void> {
    const reply = await this.request({
      id: 0,
      type: 'load',
      source,
      filename: this.config.filename,
      functionName: this.config.functionName,
      timeoutMs: this.timeoutMs,
    });
    if (!reply.ok)
      throw new Error(`The UDF ${this.config.filename} failed to load: ${reply.error}`);
    this.source = source;
  }

  private async run(inputs: string[]): Promise<UdfOutcome[]> {
    const reply = await this.request({ id: 0, type: 'run', inputs });
    if (!reply.ok) throw new Error(reply.error);
    return reply.outcomes ?? [];
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task, task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async request(request: WorkerRequest): Promise<WorkerReply> {
    const worker = await this.ensureWorker();
    const id = this.nextId++;
    const calls = request.type === 'run' ? request.inputs.length : 1;
    // The sandbox interrupts each call itself; this guards against a worker that stops answering.
    const deadline = this.timeoutMs * (calls + 1) + 5000;
    return new Promise<WorkerReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending = undefined;
        void this.discardWorker();
        reject(new Error(`the UDF worker did not answer within ${deadline} ms`));
      }, deadline);
      this.pending = {
        id,
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      worker.postMessage({ ...request, id });
    });
  }

  private async ensureWorker(): Promise<Worker> {
    if (this.worker) return this.worker;
    const worker = new Worker(new URL('./worker.js', import.meta.url), {
      env: {},
      stdout: true,
      stderr: true,
      resourceLimits: { maxOldGenerationSizeMb: this.memoryMb, maxYoungGenerationSizeMb: 16 },
    });
    worker.on('message', (reply: WorkerReply) => {
      const pending = this.pending;
      if (pending?.id !== reply.id) return;
      this.pending = undefined;
      pending.resolve(reply);
    });
    const fail = (error: Error): void => {
      if (this.worker === worker) this.worker = undefined;
      const pending = this.pending;
      this.pending = undefined;
      pending?.reject(error);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the UDF worker exited with code ${code}`)));
    this.worker = worker;
    if (this.source) {
      // A replacement worker starts with the source the previous one had.
      const source = this.source;
      this.source = '';
      await this.load(source);
    }
    return worker;
  }

  private async discardWorker(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }
}

function crashed(error: unknown): UdfOutcome {
  const message = `The UDF call stopped its worker (${describe(error)}); it may have used more memory than allowed.`;
  return { kind: 'failed', message, stacktrace: `Error: ${message}` };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

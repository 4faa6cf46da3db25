import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

import { LabError } from '../errors.js';
import type { Detection } from './box.js';
import type { FrameRequest, WorkerInit, WorkerMessage } from './detect-worker.js';
import { defaultModelDir, verifyModel } from './model.js';

/**
 * A pool of detector threads, one per core, shared by every job that wants frames detected.
 * Each job has its own queue and free workers take frames from the jobs in turn, so two videos
 * annotated at once progress at the same pace instead of the second waiting for the first.
 */

export interface PoolOptions {
  /** Worker threads; one per core unless set. */
  size?: number;
  modelDir?: string;
}

interface Task {
  width: number;
  height: number;
  rgb: Uint8Array;
  resolve: (detections: Detection[]) => void;
  reject: (error: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  task: Task | undefined;
  id: number;
}

export class DetectorPool {
  readonly size: number;
  readonly modelDir: string;
  /** Milliseconds the slowest worker took to load the model, once all are ready. */
  loadMs = 0;
  private slots: Slot[] = [];
  private readonly queues = new Map<string, Task[]>();
  private turn = 0;
  private started: Promise<void> | undefined;
  private closed = false;
  private failure: Error | undefined;

  constructor(options: PoolOptions = {}) {
    this.size = Math.max(1, options.size ?? availableParallelism());
    this.modelDir = options.modelDir ?? defaultModelDir();
  }

  /** True once every worker has died or failed to start; such a pool must be replaced. */
  get broken(): boolean {
    return this.failure !== undefined || this.closed;
  }

  /** Verifies the model and starts the workers; resolves when every worker has loaded it. */
  start(): Promise<void> {
    this.started ??= this.spawn();
    return this.started;
  }

  /** Detects objects in one frame on behalf of `job`. */
  async detect(job: string, width: number, height: number, rgb: Uint8Array): Promise<Detection[]> {
    await this.start();
    if (this.failure) throw this.failure;
    if (this.closed) throw new LabError('The detector pool was closed.');
    return new Promise<Detection[]>((resolve, reject) => {
      let queue = this.queues.get(job);
      if (!queue) this.queues.set(job, (queue = []));
      queue.push({ width, height, rgb, resolve, reject });
      this.dispatch();
    });
  }

  /** Drops a job's frames that no worker has taken yet. */
  cancel(job: string): void {
    const queue = this.queues.get(job);
    this.queues.delete(job);
    for (const task of queue ?? []) task.reject(new LabError('The annotation was cancelled.'));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of [...this.queues.keys()]) this.cancel(job);
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
    this.slots = [];
  }

  private async spawn(): Promise<void> {
    verifyModel(this.modelDir);
    const init: WorkerInit = { modelDir: this.modelDir };
    const readies: Promise<number>[] = [];
    for (let i = 0; i < this.size; i++) {
      const worker = new Worker(new URL('./detect-worker.js', import.meta.url), {
        workerData: init,
      });
      const slot: Slot = { worker, ready: false, task: undefined, id: 0 };
      this.slots.push(slot);
      readies.push(
        new Promise<number>((resolve, reject) => {
          worker.on('message', (message: WorkerMessage) => {
            if (message.type === 'ready') {
              slot.ready = true;
              resolve(message.loadMs);
              this.dispatch();
            } else if (message.type === 'failed') {
              reject(new LabError(`The object detector could not start: ${message.message}`));
            } else {
              this.finish(slot, message);
            }
          });
          worker.on('error', (error) => {
            this.fail(slot, error);
            reject(error);
          });
          worker.on('exit', (code) => {
            if (!this.closed) this.fail(slot, new Error(`A detector thread exited with ${code}.`));
          });
        }),
      );
    }
    try {
      this.loadMs = Math.max(...(await Promise.all(readies)));
    } catch (error) {
      this.failure = error instanceof Error ? error : new Error(String(error));
      await this.close();
      throw this.failure;
    }
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (!slot.ready || slot.task) continue;
      const task = this.nextTask();
      if (!task) return;
      slot.task = task;
      slot.id += 1;
      const request: FrameRequest = {
        id: slot.id,
        width: task.width,
        height: task.height,
        rgb: task.rgb,
      };
      slot.worker.postMessage(request);
    }
  }

  /** Round-robin over the jobs that have frames waiting. */
  private nextTask(): Task | undefined {
    const jobs = [...this.queues.keys()];
    for (let i = 0; i < jobs.length; i++) {
      const job = jobs[(this.turn + i) % jobs.length] as string;
      const queue = this.queues.get(job);
      const task = queue?.shift();
      if (!task) continue;
      if (queue?.length === 0) this.queues.delete(job);
      this.turn = (this.turn + i + 1) % Math.max(1, jobs.length);
      return task;
    }
    return undefined;
  }

  private finish(slot: Slot, message: WorkerMessage): void {
    const task = slot.task;
    slot.task = undefined;
    if (task && message.type === 'result') task.resolve(message.detections);
    else if (task && message.type === 'error') task.reject(new Error(message.message));
    this.dispatch();
  }

  private fail(slot: Slot, error: Error): void {
    slot.ready = false;
    slot.task?.reject(error);
    slot.task = undefined;
    if (this.slots.every((s) => !s.ready)) {
      this.failure ??= error;
      for (const job of [...this.queues.keys()]) this.cancel(job);
    }
  }
}

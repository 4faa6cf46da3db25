import { errorMessage } from '../../errors.js';
import type { PipelineMetrics } from '../../local/dataflow/protocol.js';

/**
 * A sliding window of per-second buckets for a job's throughput and latency. Each bucket keeps at
 * most `SAMPLES_PER_BUCKET` latency samples (every n-th one past that), so memory stays flat at
 * any rate.
 */

const SAMPLES_PER_BUCKET = 2000;

interface Bucket {
  second: number;
  count: number;
  seen: number;
  samples: number[];
}

export class RateWindow {
  private buckets: Bucket[] = [];

  constructor(private readonly spanMs: number) {}

  add(nowMs: number, count: number, latenciesMs: number[]): void {
    const bucket = this.bucketAt(Math.floor(nowMs / 1000));
    bucket.count += count;
    for (const latency of latenciesMs) {
      bucket.seen++;
      if (bucket.samples.length < SAMPLES_PER_BUCKET) bucket.samples.push(latency);
      else {
        // Reservoir sampling keeps the kept samples representative of the whole second.
        const slot = Math.floor(Math.random() * bucket.seen);
        if (slot < SAMPLES_PER_BUCKET) bucket.samples[slot] = latency;
      }
    }
  }

  /** Count per second over the window, ignoring the second in progress. */
  ratePerSecond(nowMs: number): number {
    const current = Math.floor(nowMs / 1000);
    const seconds = Math.max(1, Math.round(this.spanMs / 1000) - 1);
    const total = this.recent(nowMs)
      .filter((b) => b.second < current)
      .reduce((sum, b) => sum + b.count, 0);
    return Math.round(total / seconds);
  }

  latency(nowMs: number): { p50: number; p99: number } {
    const samples = this.recent(nowMs)
      .flatMap((b) => b.samples)
      .sort((a, b) => a - b);
    return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99) };
  }

  private recent(nowMs: number): Bucket[] {
    const oldest = Math.floor((nowMs - this.spanMs) / 1000);
    this.buckets = this.buckets.filter((b) => b.second > oldest);
    return this.buckets;
  }

  private bucketAt(second: number): Bucket {
    const last = this.buckets[this.buckets.length - 1];
    if (last?.second === second) return last;
    const bucket: Bucket = { second, count: 0, seen: 0, samples: [] };
    this.buckets.push(bucket);
    if (this.buckets.length > 120) this.buckets.shift();
    return bucket;
  }
}

/** The value at quantile `q` of sorted samples (nearest rank), 0 when there are none. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? 0;
}

/** What a job reports about itself, gathered into the metrics file's shape. */
export interface JobSnapshot {
  state: PipelineMetrics['state'];
  read: number;
  written: number;
  deadLettered: number;
  dropped: number;
  /** The pull loop, for the backlog held and the age of its oldest message. */
  source: { readonly heldCount: number; oldestHeldPublishMs(): number | undefined } | undefined;
  window: RateWindow;
  failure: string | undefined;
}

export function jobMetrics(job: JobSnapshot, now: number): PipelineMetrics {
  const oldest = job.source?.oldestHeldPublishMs();
  const latency = job.window.latency(now);
  return {
    updatedAt: new Date(now).toISOString(),
    state: job.state,
    elementsRead: job.read,
    elementsWritten: job.written,
    deadLettered: job.deadLettered,
    dropped: job.dropped,
    inFlight: job.source?.heldCount ?? 0,
    writtenPerSecond: job.window.ratePerSecond(now),
    systemLagMs: oldest === undefined ? 0 : Math.max(0, now - oldest),
    latencyP50Ms: latency.p50,
    latencyP99Ms: latency.p99,
    ...(job.failure ? { failure: job.failure } : {}),
  };
}

/**
 * A pipeline's state as its metrics report it, and the `done` its runtime waits on: resolved
 * once a drain has finished, rejected at the first failure. Both job programs keep one.
 */
export class JobLifecycle {
  state: PipelineMetrics['state'] = 'starting';
  /** Why the job failed, once it has. */
  failure: string | undefined;
  readonly done: Promise<void>;
  private settle: { resolve: () => void; reject: (error: Error) => void } | undefined;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // The runtime may only look at `done` later; a failure must not go unhandled meanwhile.
    this.done.catch(() => undefined);
  }

  /** Starts a drain; false when one started already or the job has failed. */
  beginDrain(): boolean {
    if (this.state === 'draining' || this.state === 'drained' || this.state === 'failed') {
      return false;
    }
    this.state = 'draining';
    return true;
  }

  /** Ends a drain that no failure cut short, and resolves `done`. */
  endDrain(): void {
    if (this.state !== 'draining') return;
    this.state = 'drained';
    this.settle?.resolve();
  }

  /** Records the first failure and rejects `done`; false when the job had failed already. */
  fail(error: unknown): boolean {
    if (this.state === 'failed') return false;
    const reason = errorMessage(error);
    this.state = 'failed';
    this.failure = reason;
    this.settle?.reject(error instanceof Error ? error : new Error(reason));
    return true;
  }
}

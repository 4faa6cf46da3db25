import { readFileSync, renameSync, writeFileSync } from 'node:fs';

import { EXIT_FAILED, PIPELINE_ENV } from '../local/dataflow/protocol.js';
import type { PipelineMetrics } from '../local/dataflow/protocol.js';
import { Logger } from '../log.js';
import { ParameterError } from './pubsub-to-bigquery/parameters.js';
import { PipelineFailure } from './pubsub-to-bigquery/pipeline.js';
import { FatalSinkError } from './pubsub-to-bigquery/sink.js';

/**
 * What every local Dataflow job program shares: parameters from the environment, a log on
 * stderr, a metrics file rewritten once a second, the totals of the process before a restart,
 * draining on SIGTERM, and an exit code the Dataflow service reads (see
 * `local/dataflow/protocol.ts`).
 */

const METRICS_INTERVAL_MS = 1000;

/** A job's pipeline as the runtime drives it. */
export interface JobPipeline {
  start(): Promise<void>;
  readonly done: Promise<void>;
  drain(): Promise<void>;
  metrics(): PipelineMetrics;
}

export class JobRuntime {
  readonly log: Logger;
  readonly metricsFile: string | undefined;

  constructor(tag: string) {
    this.log = new Logger({ level: 'info', tag });
    this.metricsFile = process.env[PIPELINE_ENV.metricsFile];
  }

  /** The launch parameters; a LabError-free failure the caller turns into `fail`. */
  parameters(): Record<string, string> {
    try {
      return JSON.parse(process.env[PIPELINE_ENV.parameters] ?? '{}') as Record<string, string>;
    } catch {
      throw new ParameterError(
        `${PIPELINE_ENV.parameters} is not a JSON object of template parameters.`,
      );
    }
  }

  /** The metrics the previous process of this job left, if it ran before. */
  previousMetrics(): Partial<PipelineMetrics> | undefined {
    if (!this.metricsFile) return undefined;
    try {
      return JSON.parse(readFileSync(this.metricsFile, 'utf8')) as Partial<PipelineMetrics>;
    } catch {
      return undefined;
    }
  }

  writeMetrics(metrics: PipelineMetrics): void {
    if (!this.metricsFile) return;
    try {
      writeFileSync(`${this.metricsFile}.tmp`, JSON.stringify(metrics));
      renameSync(`${this.metricsFile}.tmp`, this.metricsFile);
    } catch (error) {
      this.log.debug('could not write metrics: %s', String(error));
    }
  }

  /** Records why the job failed, for the service to show, and returns the failure exit code. */
  fail(reason: string): number {
    this.log.error(reason);
    this.writeMetrics({ ...emptyMetrics(), state: 'failed', failure: reason });
    return EXIT_FAILED;
  }

  /**
   * Runs a pipeline to its end: metrics once a second, drain on SIGTERM or SIGINT, and a
   * failure the job reports (rather than a crash the service restarts) for what retrying
   * cannot fix.
   */
  async run(pipeline: JobPipeline, drainMessage: string): Promise<number> {
    const timer = setInterval(() => this.writeMetrics(pipeline.metrics()), METRICS_INTERVAL_MS);
    const stop = (): void => {
      this.log.info(drainMessage);
      void pipeline.drain();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    try {
      await pipeline.start();
      this.writeMetrics(pipeline.metrics());
      await pipeline.done;
      this.log.info('drained');
      this.writeMetrics(pipeline.metrics());
      return 0;
    } catch (error) {
      if (error instanceof PipelineFailure || error instanceof FatalSinkError) {
        return this.fail(error.message);
      }
      throw error;
    } finally {
      clearInterval(timer);
    }
  }
}

export function emptyMetrics(): PipelineMetrics {
  return {
    updatedAt: new Date().toISOString(),
    state: 'starting',
    elementsRead: 0,
    elementsWritten: 0,
    deadLettered: 0,
    dropped: 0,
    inFlight: 0,
    writtenPerSecond: 0,
    systemLagMs: 0,
    latencyP50Ms: 0,
    latencyP99Ms: 0,
  };
}

/** Runs a job's main function and exits with its code; an unexpected error exits 1. */
export function runJob(main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(
        `${error instanceof Error && error.stack ? error.stack : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}

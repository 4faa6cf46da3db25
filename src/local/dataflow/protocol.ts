/**
 * The contract between the local Dataflow service and the pipeline programs it runs. A pipeline
 * is an ordinary Node program: it reads its template parameters and where to write its metrics
 * from the environment, points the official clients at the local cloud with
 * `targetFromEnvironment()`, writes a metrics file about once a second, drains and exits 0 on
 * SIGTERM, and exits with `EXIT_FAILED` (after writing the reason into the metrics file) when it
 * cannot go on, such as a missing output table. Any other exit is a crash, and the job restarts.
 */

export const PIPELINE_ENV = {
  /** The template parameters, as one JSON object of strings. */
  parameters: 'CYMBAL_PIPELINE_PARAMETERS',
  /** Path of the metrics file the pipeline keeps current. */
  metricsFile: 'CYMBAL_PIPELINE_METRICS',
  jobId: 'CYMBAL_DATAFLOW_JOB_ID',
  jobName: 'CYMBAL_DATAFLOW_JOB_NAME',
} as const;

/** The pipeline cannot go on (bad configuration, missing table): the job fails, no restart. */
export const EXIT_FAILED = 3;

export interface PipelineMetrics {
  updatedAt: string;
  state: 'starting' | 'running' | 'draining' | 'drained' | 'failed';
  /** Messages read from the source since the job started. */
  elementsRead: number;
  /** Rows committed to the output table. */
  elementsWritten: number;
  deadLettered: number;
  /** Messages a UDF dropped on purpose. */
  dropped: number;
  /** Read, not yet committed and acked: the job's own backlog. */
  inFlight: number;
  /** Rows written per second over the last few seconds. */
  writtenPerSecond: number;
  /** Age of the oldest message in flight (Dataflow's "system lag"), 0 when none. */
  systemLagMs: number;
  /** Publish-to-committed latency over the last few seconds. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Set when `state` is `failed`. */
  failure?: string;
}

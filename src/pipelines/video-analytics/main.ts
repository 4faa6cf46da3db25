import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { createClients } from '../../cloud/clients.js';
import { targetFromEnvironment } from '../../cloud/target.js';
import { Logger } from '../../log.js';
import { EXIT_FAILED, PIPELINE_ENV } from '../../local/dataflow/protocol.js';
import type { PipelineMetrics } from '../../local/dataflow/protocol.js';
import { ParameterError } from '../pubsub-to-bigquery/parameters.js';
import { PipelineFailure } from '../pubsub-to-bigquery/pipeline.js';
import { FatalSinkError } from '../pubsub-to-bigquery/sink.js';
import { pubsubPublisher, videoIntelligenceAnnotator } from './adapters.js';
import { parseVideoAnalyticsParameters } from './parameters.js';
import type { VideoCounts } from './pipeline.js';
import { VideoAnalyticsPipeline } from './pipeline.js';
import { ProgressLedger } from './progress.js';

/**
 * The program the local Dataflow service runs for a video analytics flex template job. Like the
 * Pub/Sub-to-BigQuery job (see `local/dataflow/protocol.ts`) it reads its parameters from the
 * environment, logs to stderr, writes its metrics file once a second and drains on SIGTERM. It
 * also keeps `video-progress.jsonl` beside the metrics file: what it finished per video, so a
 * restarted process neither loses a video nor writes its rows twice.
 */

const METRICS_INTERVAL_MS = 1000;
const VIDEOS_IN_FLIGHT_ENV = 'CYMBAL_VIDEO_PIPELINE_CONCURRENCY';

async function main(): Promise<number> {
  const log = new Logger({ level: 'info', tag: 'video-analytics' });
  const metricsFile = process.env[PIPELINE_ENV.metricsFile];
  const writeMetrics = (metrics: PipelineMetrics): void => {
    if (!metricsFile) return;
    try {
      writeFileSync(`${metricsFile}.tmp`, JSON.stringify(metrics));
      renameSync(`${metricsFile}.tmp`, metricsFile);
    } catch (error) {
      log.debug('could not write metrics: %s', String(error));
    }
  };
  const failWith = (reason: string): number => {
    log.error(reason);
    writeMetrics({ ...emptyMetrics(), state: 'failed', failure: reason });
    return EXIT_FAILED;
  };

  let options;
  try {
    const parameters = JSON.parse(process.env[PIPELINE_ENV.parameters] ?? '{}') as Record<
      string,
      string
    >;
    options = parseVideoAnalyticsParameters(parameters);
  } catch (error) {
    if (error instanceof ParameterError) return failWith(error.message);
    if (error instanceof SyntaxError) {
      return failWith(`${PIPELINE_ENV.parameters} is not a JSON object of template parameters.`);
    }
    throw error;
  }

  const clients = createClients(targetFromEnvironment());
  const concurrency = Number(process.env[VIDEOS_IN_FLIGHT_ENV]) || 4;
  const pipeline = new VideoAnalyticsPipeline({
    options,
    subscriber: clients.subscriber,
    bigquery: clients.bigquery,
    annotator: videoIntelligenceAnnotator(clients.video),
    publisher: pubsubPublisher(clients.pubsub),
    progress: new ProgressLedger(
      metricsFile ? join(dirname(metricsFile), 'video-progress.jsonl') : undefined,
    ),
    maxVideosInFlight: concurrency,
    log,
    ...(metricsFile ? { baseline: readBaseline(metricsFile) } : {}),
  });
  const timer = setInterval(() => writeMetrics(pipeline.metrics()), METRICS_INTERVAL_MS);
  const stop = (): void => {
    log.info('draining: no more pulls, finishing the videos being annotated');
    void pipeline.drain();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);

  try {
    await pipeline.start();
    writeMetrics(pipeline.metrics());
    await pipeline.done;
    log.info('drained');
    writeMetrics(pipeline.metrics());
    return 0;
  } catch (error) {
    if (error instanceof PipelineFailure || error instanceof FatalSinkError) {
      return failWith(error.message);
    }
    throw error;
  } finally {
    clearInterval(timer);
    await clients.close();
  }
}

/** Totals from before a restart, so that the job's counts survive its process. */
function readBaseline(metricsFile: string): Partial<VideoCounts> {
  try {
    const previous = JSON.parse(readFileSync(metricsFile, 'utf8')) as Partial<PipelineMetrics>;
    return {
      read: previous.elementsRead ?? 0,
      rowsWritten: previous.elementsWritten ?? 0,
      errors: previous.deadLettered ?? 0,
      ignored: previous.dropped ?? 0,
    };
  } catch {
    return {};
  }
}

function emptyMetrics(): PipelineMetrics {
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

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(
      `${error instanceof Error && error.stack ? error.stack : String(error)}\n`,
    );
    process.exit(1);
  },
);

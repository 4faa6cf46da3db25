import { dirname, join } from 'node:path';

import { createClients } from '../../cloud/clients.js';
import { targetFromEnvironment } from '../../cloud/target.js';
import { ParameterError } from '../pubsub-to-bigquery/parameters.js';
import { JobRuntime, runJob } from '../runtime.js';
import { pubsubPublisher, videoIntelligenceAnnotator } from './adapters.js';
import { parseVideoAnalyticsParameters } from './parameters.js';
import { VideoAnalyticsPipeline } from './pipeline.js';
import { ProgressLedger } from './progress.js';

/**
 * The program the local Dataflow service runs for a video analytics flex template job. Like the
 * Pub/Sub-to-BigQuery job (see `local/dataflow/protocol.ts`) it reads its parameters from the
 * environment, logs to stderr, writes its metrics file once a second and drains on SIGTERM. It
 * also keeps `video-progress.jsonl` beside the metrics file: what it finished per video, so a
 * restarted process neither loses a video nor writes its rows twice.
 */

const VIDEOS_IN_FLIGHT_ENV = 'CYMBAL_VIDEO_PIPELINE_CONCURRENCY';

async function main(): Promise<number> {
  const runtime = new JobRuntime('video-analytics');
  let options;
  try {
    options = parseVideoAnalyticsParameters(runtime.parameters());
  } catch (error) {
    if (error instanceof ParameterError) return runtime.fail(error.message);
    throw error;
  }

  const clients = createClients(targetFromEnvironment());
  const concurrency = Number(process.env[VIDEOS_IN_FLIGHT_ENV]) || 4;
  const { metricsFile } = runtime;
  // Totals from before a restart, so that the job's counts survive its process.
  const previous = runtime.previousMetrics() ?? {};
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
    log: runtime.log,
    ...(metricsFile
      ? {
          baseline: {
            read: previous.elementsRead ?? 0,
            rowsWritten: previous.elementsWritten ?? 0,
            errors: previous.deadLettered ?? 0,
            ignored: previous.dropped ?? 0,
          },
        }
      : {}),
  });
  try {
    return await runtime.run(
      pipeline,
      'draining: no more pulls, finishing the videos being annotated',
    );
  } finally {
    await clients.close();
  }
}

runJob(main);

import { readFileSync, renameSync, writeFileSync } from 'node:fs';

import { createClients } from '../../cloud/clients.js';
import { targetFromEnvironment } from '../../cloud/target.js';
import { Logger } from '../../log.js';
import { EXIT_FAILED, PIPELINE_ENV } from '../../local/dataflow/protocol.js';
import type { PipelineMetrics } from '../../local/dataflow/protocol.js';
import { JavaScriptUdf, gcsReader } from '../udf/udf.js';
import { ParameterError, parsePubSubToBigQueryParameters } from './parameters.js';
import type { PipelineCounts } from './pipeline.js';
import { PipelineFailure, PubSubToBigQueryPipeline } from './pipeline.js';
import { FatalSinkError } from './sink.js';

/**
 * The program the local Dataflow service runs for a "Pub/Sub Subscription to BigQuery" job. It
 * takes its parameters from the environment (see `local/dataflow/protocol.ts`), writes its log to
 * stderr (the service sends it to the job's log file) and its metrics to a file once a second.
 * SIGTERM drains: no more pulls, every message already read is written and acked, exit 0.
 */

const METRICS_INTERVAL_MS = 1000;

async function main(): Promise<number> {
  const log = new Logger({ level: 'info', tag: 'pubsub-to-bigquery' });
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

  let parameters: Record<string, string>;
  try {
    parameters = JSON.parse(process.env[PIPELINE_ENV.parameters] ?? '{}') as Record<string, string>;
  } catch {
    return failWith(`${PIPELINE_ENV.parameters} is not a JSON object of template parameters.`);
  }
  let options;
  try {
    options = parsePubSubToBigQueryParameters(parameters);
  } catch (error) {
    if (error instanceof ParameterError) return failWith(error.message);
    throw error;
  }

  const clients = createClients(targetFromEnvironment());
  let udf: JavaScriptUdf | undefined;
  if (options.udf) {
    try {
      udf = await JavaScriptUdf.start({
        filename: options.udf.gcsPath,
        functionName: options.udf.functionName,
        reloadIntervalMinutes: options.udf.reloadIntervalMinutes,
        read: gcsReader(clients.storage, options.udf.gcsPath),
        log: log.child('udf'),
      });
    } catch (error) {
      return failWith(error instanceof Error ? error.message : String(error));
    }
  }

  const pipeline = new PubSubToBigQueryPipeline({
    options,
    baseline: readBaseline(metricsFile),
    subscriber: clients.subscriber,
    bigquery: clients.bigquery,
    log,
    ...(udf ? { udf } : {}),
  });
  const timer = setInterval(() => writeMetrics(pipeline.metrics()), METRICS_INTERVAL_MS);
  const stop = (): void => {
    log.info('draining: no more pulls, finishing the messages in flight');
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
    await udf?.close();
    await clients.close();
  }
}

/** Counts from before a restart, so that the job's totals survive its process. */
function readBaseline(metricsFile: string | undefined): PipelineCounts | undefined {
  if (!metricsFile) return undefined;
  try {
    const previous = JSON.parse(readFileSync(metricsFile, 'utf8')) as Partial<PipelineMetrics>;
    return {
      read: previous.elementsRead ?? 0,
      written: previous.elementsWritten ?? 0,
      deadLettered: previous.deadLettered ?? 0,
      dropped: previous.dropped ?? 0,
    };
  } catch {
    return undefined;
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

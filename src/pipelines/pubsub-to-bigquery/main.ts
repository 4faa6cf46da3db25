import { createClients } from '../../cloud/clients.js';
import { targetFromEnvironment } from '../../cloud/target.js';
import { JobRuntime, runJob } from '../runtime.js';
import { JavaScriptUdf, gcsReader } from '../udf/udf.js';
import { ParameterError, parsePubSubToBigQueryParameters } from './parameters.js';
import { PubSubToBigQueryPipeline } from './pipeline.js';

/**
 * The program the local Dataflow service runs for a "Pub/Sub Subscription to BigQuery" job.
 * SIGTERM drains: no more pulls, every message already read is written and acked, exit 0.
 */
async function main(): Promise<number> {
  const runtime = new JobRuntime('pubsub-to-bigquery');
  let options;
  try {
    options = parsePubSubToBigQueryParameters(runtime.parameters());
  } catch (error) {
    if (error instanceof ParameterError) return runtime.fail(error.message);
    throw error;
  }

  const clients = createClients(targetFromEnvironment());
  let udf: JavaScriptUdf | undefined;
  try {
    if (options.udf) {
      try {
        udf = await JavaScriptUdf.start({
          filename: options.udf.gcsPath,
          functionName: options.udf.functionName,
          reloadIntervalMinutes: options.udf.reloadIntervalMinutes,
          read: gcsReader(clients.storage, options.udf.gcsPath),
          log: runtime.log.child('udf'),
        });
      } catch (error) {
        return runtime.fail(error instanceof Error ? error.message : String(error));
      }
    }
    // Counts from before a restart, so that the job's totals survive its process.
    const previous = runtime.previousMetrics();
    const pipeline = new PubSubToBigQueryPipeline({
      options,
      ...(previous
        ? {
            baseline: {
              read: previous.elementsRead ?? 0,
              written: previous.elementsWritten ?? 0,
              deadLettered: previous.deadLettered ?? 0,
              dropped: previous.dropped ?? 0,
            },
          }
        : {}),
      subscriber: clients.subscriber,
      bigquery: clients.bigquery,
      log: runtime.log,
      ...(udf ? { udf } : {}),
    });
    return await runtime.run(pipeline, 'draining: no more pulls, finishing the messages in flight');
  } finally {
    await udf?.close();
    await clients.close();
  }
}

runJob(main);

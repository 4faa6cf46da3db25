import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';

export const streamingJob: StepDefinition = {
  part: 1,
  number: 6,
  title: 'Stream events into BigQuery with Dataflow',
  explain:
    'Google\'s "Pub/Sub Subscription to BigQuery" template reads each message, maps the JSON ' +
    "keys to the table's columns and writes the rows. Messages that are not valid JSON or that " +
    'the table rejects go to a dead-letter table instead of being lost. An optional JavaScript ' +
    'function can reshape each message on the way.',
  commands: (c) => [
    `gcloud dataflow jobs run ${c.jobName} --region ${c.region} ` +
      `--gcs-location gs://dataflow-templates-${c.region}/latest/PubSub_Subscription_to_BigQuery ` +
      `--parameters inputSubscription=projects/${c.project}/subscriptions/${c.subscription},` +
      `outputTableSpec=${c.project}:${c.dataset}.${c.table}`,
  ],
  needs: ['table', 'subscription'],
  outputs: ['jobId'],
  ...pendingOperations('Part 1 step 6'),
};

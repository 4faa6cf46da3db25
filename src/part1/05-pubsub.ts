import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';

export const eventsTopic: StepDefinition = {
  part: 1,
  number: 5,
  title: 'Create the Pub/Sub topic and subscription',
  explain:
    'Pub/Sub decouples the ingest app from the pipeline: the app publishes each event to a ' +
    'topic and returns at once, and the pipeline reads them from a subscription at its own ' +
    'pace. A message not acknowledged within the ack deadline is delivered again.',
  commands: (c) => [
    `gcloud pubsub topics create ${c.topic}`,
    `gcloud pubsub subscriptions create ${c.subscription} --topic ${c.topic} --ack-deadline 20`,
  ],
  needs: ['project'],
  outputs: ['topic', 'subscription'],
  ...pendingOperations('Part 1 step 5'),
};

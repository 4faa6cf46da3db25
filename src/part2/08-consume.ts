import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';

export const consumeResults: StepDefinition = {
  part: 2,
  number: 8,
  title: 'Consume the filtered results',
  explain:
    'An application subscribes to the results topic and reacts to each detection. This step ' +
    'plays that application: it prints the entity and file of each message and acknowledges ' +
    'it, and reports any message it cannot read without acknowledging it.',
  commands: (c) => [
    `gcloud pubsub subscriptions pull ${c.detectionSubscription} --auto-ack --limit 10`,
  ],
  needs: ['videosUploaded'],
  outputs: ['resultsConsumed'],
  ...pendingOperations('Part 2 step 8'),
};

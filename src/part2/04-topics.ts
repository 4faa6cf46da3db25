import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';

export const resultTopics: StepDefinition = {
  part: 2,
  number: 4,
  title: 'Create the topics for filtered results and errors',
  explain:
    'Every annotation goes to BigQuery, but the entities you care about, seen with high ' +
    'confidence, are also published to a topic for applications that react in real time. ' +
    'Failures go to an error topic so that nothing fails silently.',
  commands: (c) => [
    `gcloud pubsub topics create ${c.detectionTopic}`,
    `gcloud pubsub subscriptions create ${c.detectionSubscription} --topic ${c.detectionTopic}`,
    `gcloud pubsub topics create ${c.errorTopic}`,
    `gcloud pubsub subscriptions create ${c.errorSubscription} --topic ${c.errorTopic}`,
  ],
  needs: ['project'],
  outputs: ['detectionSubscription', 'errorSubscription'],
  ...pendingOperations('Part 2 step 4'),
};

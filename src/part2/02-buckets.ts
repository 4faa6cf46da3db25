import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';
import { templateBucket, videoBucket } from '../config.js';

export const buckets: StepDefinition = {
  part: 2,
  number: 2,
  title: 'Create the buckets and the upload notification',
  explain:
    'Videos are uploaded to a bucket. A notification on that bucket publishes a Pub/Sub ' +
    'message each time an object is written, which is how the pipeline learns that there is ' +
    "a new video to analyse. A second bucket holds the pipeline's template.",
  commands: (c) => [
    `gsutil mb -l ${c.region} gs://${videoBucket(c)}`,
    `gsutil mb -l ${c.region} gs://${templateBucket(c)}`,
    `gcloud pubsub topics create ${c.notificationTopic}`,
    `gcloud pubsub subscriptions create ${c.notificationSubscription} --topic ${c.notificationTopic}`,
    `gsutil notification create -t ${c.notificationTopic} -f json gs://${videoBucket(c)}`,
  ],
  needs: ['project'],
  outputs: ['videoBucket', 'templateBucket', 'notificationSubscription'],
  ...pendingOperations('Part 2 step 2'),
};

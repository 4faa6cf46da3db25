import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';
import { templateBucket } from '../config.js';

export const trackingJob: StepDefinition = {
  part: 2,
  number: 5,
  title: 'Launch the video object-tracking pipeline',
  explain:
    'A Dataflow flex template reads the upload notifications, asks the Video Intelligence API ' +
    'to track objects in each new video, writes every annotation to BigQuery and publishes ' +
    'the listed entities above the confidence threshold to the results topic.',
  commands: (c) => [
    `gcloud dataflow flex-template run ${c.videoJobName} --region ${c.region} ` +
      `--template-file-gcs-location gs://${templateBucket(c)}/video_analytics.json ` +
      `--parameters inputNotificationSubscription=projects/${c.project}/subscriptions/` +
      `${c.notificationSubscription},outputTopic=projects/${c.project}/topics/${c.detectionTopic},` +
      `errorTopic=projects/${c.project}/topics/${c.errorTopic},features=OBJECT_TRACKING,` +
      `entities=${c.entities},confidenceThreshold=${c.confidenceThreshold},windowInterval=1,` +
      `tableReference=${c.project}:${c.videoDataset}.${c.videoTable}`,
  ],
  needs: ['notificationSubscription', 'videoTable', 'detectionSubscription'],
  outputs: ['videoJobId'],
  ...pendingOperations('Part 2 step 5'),
};

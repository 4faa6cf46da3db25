import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';

export const deployService: StepDefinition = {
  part: 1,
  number: 3,
  title: 'Deploy the ingest app on Cloud Run',
  explain:
    'Cloud Run runs the image as a service with its own HTTPS address. That address is the ' +
    'ingest endpoint: a website or tag manager posts each event to its /json route.',
  commands: (c) => [
    `gcloud run deploy ${c.serviceName} --image ` +
      `${c.region}-docker.pkg.dev/${c.project}/${c.repository}/${c.serviceName}:${c.imageTag} ` +
      `--region ${c.region} --allow-unauthenticated --set-env-vars TOPIC=${c.topic}`,
    `gcloud run services describe ${c.serviceName} --region ${c.region} --format='value(status.url)'`,
  ],
  needs: ['imageUri'],
  outputs: ['serviceUrl'],
  ...pendingOperations('Part 1 step 3'),
};

import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';

export const buildImage: StepDefinition = {
  part: 1,
  number: 2,
  title: 'Containerize the ingest app with Cloud Build',
  explain:
    'The ingest app receives e-commerce events over HTTP and hands them to Pub/Sub. Cloud ' +
    'Build turns its source into a container image and stores it in an Artifact Registry ' +
    'repository, where Cloud Run can find it.',
  commands: (c) => [
    `gcloud artifacts repositories create ${c.repository} --repository-format=docker ` +
      `--location=${c.region}`,
    `gcloud builds submit assets/ingest-app --tag ` +
      `${c.region}-docker.pkg.dev/${c.project}/${c.repository}/${c.serviceName}:${c.imageTag}`,
  ],
  needs: ['project'],
  outputs: ['imageUri', 'imageDigest'],
  ...pendingOperations('Part 1 step 2'),
};

import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';

export const configure: StepDefinition = {
  part: 1,
  number: 1,
  title: 'Configure the target, project and region',
  explain:
    'Every later step works in one project and one region. On Google Cloud this step checks ' +
    'your credentials and turns on the APIs both parts use; on the local cloud it starts the ' +
    'loopback server and the Pub/Sub emulator.',
  commands: (c) => [
    `gcloud config set project ${c.project}`,
    `gcloud config set compute/region ${c.region}`,
    'gcloud services enable run.googleapis.com cloudbuild.googleapis.com ' +
      'artifactregistry.googleapis.com pubsub.googleapis.com bigquery.googleapis.com ' +
      'dataflow.googleapis.com storage.googleapis.com videointelligence.googleapis.com',
  ],
  needs: [],
  outputs: ['project', 'region'],
  ...pendingOperations('Part 1 step 1'),
};

import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';

export const configure: StepDefinition = {
  part: 2,
  number: 1,
  title: 'Configure the target for video analytics',
  explain:
    'Part 2 uses the same project and region. On Google Cloud it turns on Dataflow, Cloud ' +
    'Storage and the Video Intelligence API, which Google retires on 2027-09-14; the local ' +
    'cloud keeps an object tracker of its own that answers in the same shape.',
  commands: (c) => [
    `gcloud config set project ${c.project}`,
    'gcloud services enable dataflow.googleapis.com storage.googleapis.com ' +
      'videointelligence.googleapis.com',
  ],
  needs: [],
  outputs: ['project', 'region'],
  ...pendingOperations('Part 2 step 1'),
};

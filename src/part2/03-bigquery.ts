import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';

export const annotationsTable: StepDefinition = {
  part: 2,
  number: 3,
  title: 'Create the BigQuery dataset and annotations table',
  explain:
    'Each row holds one tracked entity in one file and time window, with the frames where it ' +
    'was seen: the time offset, the confidence and the bounding box of each.',
  commands: (c) => [
    `bq --location=US mk --dataset ${c.project}:${c.videoDataset}`,
    `bq mk --table ${c.project}:${c.videoDataset}.${c.videoTable} ` +
      'assets/schema/object_tracking_analysis.json',
  ],
  needs: ['project'],
  outputs: ['videoTable'],
  ...pendingOperations('Part 2 step 3'),
};

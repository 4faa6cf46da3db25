import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';
import { videoBucket } from '../config.js';

export const uploadVideos: StepDefinition = {
  part: 2,
  number: 6,
  title: 'Upload the sample videos',
  explain:
    'Uploading a video is all it takes to start the analysis: the bucket notification tells ' +
    'the pipeline. Long videos can be split into 5-second parts first, which the pipeline ' +
    'analyses in parallel and stitches back together by name.',
  commands: (c) => [`gsutil cp sample-data/videos/*.mp4 gs://${videoBucket(c)}/`],
  needs: ['videoJobId'],
  outputs: ['videosUploaded'],
  ...pendingOperations('Part 2 step 6'),
};

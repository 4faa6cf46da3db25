import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';

export const annotationQueries: StepDefinition = {
  part: 2,
  number: 7,
  title: 'Query the annotations in BigQuery',
  explain:
    'Three kinds of question: which files contain an entity, how confident the tracker was ' +
    'for each file and entity, and where the object was, frame by frame.',
  commands: (c) => {
    const table = `\`${c.project}.${c.videoDataset}.${c.videoTable}\``;
    return [
      `bq query --use_legacy_sql=false 'SELECT file_name, entity FROM ${table} ` +
        `WHERE entity LIKE "%person%" GROUP BY file_name, entity'`,
      `bq query --use_legacy_sql=false 'SELECT file_name, entity, MAX(frame.confidence) AS ` +
        `max_confidence FROM ${table}, UNNEST(frame_data) AS frame GROUP BY file_name, entity'`,
      `bq query --use_legacy_sql=false 'SELECT entity, frame.timeOffset, frame.confidence, ` +
        `frame.\`left\`, frame.top, frame.\`right\`, frame.bottom FROM ${table}, ` +
        `UNNEST(frame_data) AS frame WHERE entity = "cat" ORDER BY frame.timeOffset'`,
    ];
  },
  needs: ['videosUploaded'],
  outputs: [],
  ...pendingOperations('Part 2 step 7'),
};

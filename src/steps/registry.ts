import { configure as configure1 } from '../part1/01-configure.js';
import { buildImage } from '../part1/02-build.js';
import { deployService } from '../part1/03-deploy.js';
import { eventsTable } from '../part1/04-bigquery.js';
import { eventsTopic } from '../part1/05-pubsub.js';
import { streamingJob } from '../part1/06-dataflow.js';
import { postEvents } from '../part1/07-post-events.js';
import { eventQueries } from '../part1/08-queries.js';
import { configure as configure2 } from '../part2/01-configure.js';
import { buckets } from '../part2/02-buckets.js';
import { annotationsTable } from '../part2/03-bigquery.js';
import { resultTopics } from '../part2/04-topics.js';
import { trackingJob } from '../part2/05-dataflow.js';
import { uploadVideos } from '../part2/06-upload.js';
import { annotationQueries } from '../part2/07-queries.js';
import { consumeResults } from '../part2/08-consume.js';
import { LabError } from '../errors.js';
import type { PartNumber, StepDefinition } from './types.js';
import { stepId } from './types.js';

/** Both parts of the lab, in order. */
export const LAB_STEPS: readonly StepDefinition[] = [
  configure1,
  buildImage,
  deployService,
  eventsTable,
  eventsTopic,
  streamingJob,
  postEvents,
  eventQueries,
  configure2,
  buckets,
  annotationsTable,
  resultTopics,
  trackingJob,
  uploadVideos,
  annotationQueries,
  consumeResults,
];

export function stepsOfPart(steps: readonly StepDefinition[], part: PartNumber): StepDefinition[] {
  return steps.filter((s) => s.part === part);
}

/**
 * Reads a step reference as users type it: `6` is Part 1's step 6 unless `part` says
 * otherwise, and `2.6` is Part 2's step 6.
 */
export function findStep(
  steps: readonly StepDefinition[],
  reference: string,
  part?: PartNumber,
): StepDefinition {
  const match = /^(?:([12])\.)?(\d+)$/.exec(reference.trim());
  if (!match) {
    throw new LabError(`"${reference}" is not a step.`, {
      hint: 'Name a step by its number, such as `6`, or by part and number, such as `2.6`.',
    });
  }
  const fromReference = match[1] ? (Number(match[1]) as PartNumber) : undefined;
  if (fromReference && part && fromReference !== part) {
    throw new LabError(`Step ${reference} is in Part ${fromReference}, but --part says ${part}.`);
  }
  const wanted = `${fromReference ?? part ?? 1}.${Number(match[2])}`;
  const step = steps.find((s) => stepId(s) === wanted);
  if (!step) {
    throw new LabError(`There is no step ${wanted}.`, {
      hint: 'Each part has steps 1 to 8; `cymbal-lab status` lists them.',
    });
  }
  return step;
}

import { PART2_APIS, checkApis, enableApis, planApis } from '../steps/apis.js';
import type { StepDefinition } from '../steps/types.js';

export const VIDEO_API_RETIREMENT = '2027-09-14';

export const configure: StepDefinition = {
  part: 2,
  number: 1,
  title: 'Configure the target for video analytics',
  explain:
    'Part 2 uses the same project and region. On Google Cloud it turns on Dataflow, Cloud ' +
    `Storage and the Video Intelligence API, which Google retires on ${VIDEO_API_RETIREMENT}, ` +
    'and Cloud Build and Artifact Registry, which build and keep the video template image; ' +
    'the local cloud keeps an object tracker of its own that answers in the same shape.',
  commands: (c) => [
    `gcloud config set project ${c.project}`,
    `gcloud services enable ${PART2_APIS.join(' ')}`,
  ],
  needs: [],
  outputs: ['project', 'region'],
  plan: (ctx) => planApis(ctx, PART2_APIS),
  async ensure(ctx) {
    await enableApis(ctx, PART2_APIS);
    ctx.log.warn(
      `Google deprecated the Video Intelligence API and shuts it down on ${VIDEO_API_RETIREMENT}; ` +
        'after that date only the local target can run Part 2.',
    );
    return { project: ctx.config.project, region: ctx.config.region };
  },
  verify: (ctx) => checkApis(ctx, PART2_APIS),
  // Turning APIs off again could break other work in the project: teardown leaves them on.
  async teardown(ctx) {
    ctx.log.info('the APIs stay enabled; turn them off in the console if you wish');
  },
};

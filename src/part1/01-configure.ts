import { ALL_APIS, checkApis, enableApis, planApis } from '../steps/apis.js';
import type { StepDefinition } from '../steps/types.js';

export const configure: StepDefinition = {
  part: 1,
  number: 1,
  title: 'Configure the target, project and region',
  explain:
    'Every later step works in one project and one region. On Google Cloud this step checks ' +
    'your credentials and turns on the APIs both parts use; on the local cloud it starts the ' +
    'loopback server and the Pub/Sub emulator, which serve the same APIs.',
  commands: (c) => [
    `gcloud config set project ${c.project}`,
    `gcloud config set compute/region ${c.region}`,
    `gcloud services enable ${ALL_APIS.join(' ')}`,
  ],
  needs: [],
  outputs: ['project', 'region'],
  plan: (ctx) => planApis(ctx, ALL_APIS),
  async ensure(ctx) {
    await enableApis(ctx, ALL_APIS);
    return { project: ctx.config.project, region: ctx.config.region };
  },
  verify: (ctx) => checkApis(ctx, ALL_APIS),
  // Turning APIs off again could break other work in the project: teardown leaves them on.
  async teardown(ctx) {
    ctx.log.info('the APIs stay enabled; turn them off in the console if you wish');
  },
};

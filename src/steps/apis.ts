import { errorMessage, LabError } from '../errors.js';
import { check } from './kit.js';
import type { Check, PlanItem, StepContext } from './types.js';

/** The APIs each part calls. Part 1's configure step turns on both parts' APIs at once. */
export const PART1_APIS = [
  'run.googleapis.com',
  'cloudbuild.googleapis.com',
  'artifactregistry.googleapis.com',
  'pubsub.googleapis.com',
  'bigquery.googleapis.com',
  'dataflow.googleapis.com',
  'storage.googleapis.com',
];

export const PART2_APIS = [
  'dataflow.googleapis.com',
  'storage.googleapis.com',
  'pubsub.googleapis.com',
  'bigquery.googleapis.com',
  'videointelligence.googleapis.com',
  // Step 2.5 builds the video template's image on Google Cloud and keeps it in the registry.
  'cloudbuild.googleapis.com',
  'artifactregistry.googleapis.com',
];

export const ALL_APIS = [...new Set([...PART1_APIS, ...PART2_APIS])];

const ENABLED = 2;

async function enabledApis(ctx: StepContext): Promise<Set<string>> {
  const parent = `projects/${ctx.config.project}`;
  const enabled = new Set<string>();
  const [services] = await ctx.clients.serviceUsage.listServices({
    parent,
    filter: 'state:ENABLED',
  });
  for (const service of services) {
    const state = service.state as unknown;
    if (state === ENABLED || state === 'ENABLED') enabled.add(service.config?.name ?? '');
  }
  return enabled;
}

export async function planApis(ctx: StepContext, apis: string[]): Promise<PlanItem[]> {
  const enabled = await enabledApis(ctx);
  return apis.map((api) => ({
    action: enabled.has(api) ? 'keep' : 'update',
    resource: `API ${api}`,
    ...(enabled.has(api) ? {} : { detail: 'enable' }),
  }));
}

/** Turns on the APIs that are off, in one batch (Service Usage takes up to 20 at a time). */
export async function enableApis(ctx: StepContext, apis: string[]): Promise<void> {
  const enabled = await enabledApis(ctx);
  const missing = apis.filter((api) => !enabled.has(api));
  if (missing.length === 0) {
    ctx.log.debug('every API is enabled already');
    return;
  }
  ctx.log.info(`enabling ${missing.join(', ')}`);
  try {
    const [operation] = await ctx.clients.serviceUsage.batchEnableServices({
      parent: `projects/${ctx.config.project}`,
      serviceIds: missing,
    });
    await operation.promise();
  } catch (error) {
    throw new LabError(`Could not enable ${missing.join(', ')}: ${errorMessage(error)}`, {
      hint: 'Check that billing is on for the project and that you may enable services in it.',
      cause: error,
    });
  }
}

export async function checkApis(ctx: StepContext, apis: string[]): Promise<Check[]> {
  let enabled: Set<string> | undefined;
  return Promise.all(
    apis.map((api) =>
      check(`API ${api}`, async () => {
        enabled ??= await enabledApis(ctx);
        if (!enabled.has(api)) throw new Error(`not enabled in project ${ctx.config.project}`);
        return 'enabled';
      }),
    ),
  );
}

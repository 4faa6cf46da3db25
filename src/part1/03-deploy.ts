import type { protos } from '@google-cloud/run';

import type { LabConfig } from '../config.js';
import { LabError } from '../errors.js';
import { check, deleteIfPresent, exists, expectThat, waitUntil } from '../steps/kit.js';
import type { StepContext, StepDefinition } from '../steps/types.js';

type Service = protos.google.cloud.run.v2.IService;

const servicePath = (c: LabConfig) =>
  `projects/${c.project}/locations/${c.region}/services/${c.serviceName}`;

/** The image by digest, so a service runs exactly what step 2 built. */
const pinnedImage = (ctx: StepContext) => {
  const uri = ctx.outputs.imageUri ?? '';
  const digest = ctx.outputs.imageDigest;
  return digest ? `${uri.replace(/:[^/:]+$/, '')}@${digest}` : uri;
};

function desiredService(ctx: StepContext): Service {
  return {
    template: {
      containers: [
        {
          image: pinnedImage(ctx),
          env: [{ name: 'TOPIC', value: ctx.config.topic }],
          ports: [{ containerPort: 8080 }],
        },
      ],
    },
    ingress: 'INGRESS_TRAFFIC_ALL',
  };
}

/** Whether the live service already runs the wanted image with the wanted topic. */
function matches(live: Service, wanted: Service): boolean {
  const a = live.template?.containers?.[0];
  const b = wanted.template?.containers?.[0];
  const topic = (c: typeof a) => c?.env?.find((e) => e.name === 'TOPIC')?.value;
  return a?.image === b?.image && topic(a) === topic(b);
}

const isReady = (service: Service) => {
  const state = String(service.terminalCondition?.state ?? '');
  return state === 'CONDITION_SUCCEEDED' || state === '4';
};

async function getService(ctx: StepContext): Promise<Service> {
  const [service] = await ctx.clients.run.getService({ name: servicePath(ctx.config) });
  return service;
}

/** Lets anyone invoke the service, as the lab does (`--allow-unauthenticated`). */
async function allowPublicAccess(ctx: StepContext): Promise<void> {
  const resource = servicePath(ctx.config);
  const [policy] = await ctx.clients.run.getIamPolicy({ resource });
  const bindings = policy.bindings ?? [];
  const invoker = bindings.find((b) => b.role === 'roles/run.invoker');
  if (invoker?.members?.includes('allUsers')) return;
  if (invoker) invoker.members = [...(invoker.members ?? []), 'allUsers'];
  else bindings.push({ role: 'roles/run.invoker', members: ['allUsers'] });
  await ctx.clients.run.setIamPolicy({ resource, policy: { ...policy, bindings } });
  ctx.log.info('granted roles/run.invoker to allUsers');
}

export const deployService: StepDefinition = {
  part: 1,
  number: 3,
  title: 'Deploy the ingest app on Cloud Run',
  explain:
    'Cloud Run runs the image as a service with its own HTTPS address. That address is the ' +
    'ingest endpoint: a website or tag manager posts each event to its /json route.',
  commands: (c) => [
    `gcloud run deploy ${c.serviceName} --image ${c.region}-docker.pkg.dev/${c.project}/` +
      `${c.repository}/${c.serviceName}:${c.imageTag} --region ${c.region} ` +
      `--allow-unauthenticated --set-env-vars TOPIC=${c.topic}`,
    `gcloud run services describe ${c.serviceName} --region ${c.region} --format='value(status.url)'`,
  ],
  needs: ['imageUri'],
  outputs: ['serviceUrl'],

  async plan(ctx) {
    const c = ctx.config;
    const found = await exists(() => getService(ctx));
    if (!found)
      return [
        {
          action: 'create',
          resource: `Cloud Run service ${c.serviceName}`,
          detail: pinnedImage(ctx),
        },
      ];
    const live = await getService(ctx);
    return [
      matches(live, desiredService(ctx))
        ? { action: 'keep', resource: `Cloud Run service ${c.serviceName}`, detail: live.uri ?? '' }
        : {
            action: 'update',
            resource: `Cloud Run service ${c.serviceName}`,
            detail: `deploy ${pinnedImage(ctx)}`,
          },
    ];
  },

  async ensure(ctx) {
    const c = ctx.config;
    const { run } = ctx.clients;
    const wanted = desiredService(ctx);
    if (!(await exists(() => getService(ctx)))) {
      ctx.log.info(`deploying ${c.serviceName} from ${pinnedImage(ctx)}`);
      const [operation] = await run.createService({
        parent: `projects/${c.project}/locations/${c.region}`,
        serviceId: c.serviceName,
        service: wanted,
      });
      await operation.promise();
    } else {
      const live = await getService(ctx);
      if (!matches(live, wanted)) {
        ctx.log.info(`deploying a new revision of ${c.serviceName} from ${pinnedImage(ctx)}`);
        const [operation] = await run.updateService({
          service: { ...wanted, name: servicePath(c) },
        });
        await operation.promise();
      }
    }
    await allowPublicAccess(ctx);
    const ready = await waitUntil(
      `Cloud Run service ${c.serviceName} to be ready`,
      async () => {
        const service = await getService(ctx);
        return isReady(service) && service.uri ? service : undefined;
      },
      { timeoutMs: ctx.target.kind === 'local' ? 60_000 : 600_000, signal: ctx.signal },
    );
    const response = await fetch(ready.uri!, { signal: ctx.signal });
    if (!response.ok) {
      throw new LabError(`The service is deployed but ${ready.uri!} answered ${response.status}.`, {
        hint: 'Read its log: `cymbal-lab local logs --service run` locally, or Cloud Run logs in the console.',
      });
    }
    return { serviceUrl: ready.uri! };
  },

  async verify(ctx) {
    const c = ctx.config;
    const service = await check(`Cloud Run service ${c.serviceName}`, async () => {
      const live = await getService(ctx);
      expectThat(
        isReady(live),
        `not ready: ${live.terminalCondition?.message ?? 'no condition yet'}`,
      );
      expectThat(
        matches(live, desiredService(ctx)),
        `runs ${live.template?.containers?.[0]?.image ?? '?'}`,
      );
      return `ready at ${live.uri ?? '?'}`;
    });
    const answers = await check('the URL answers', async () => {
      const live = await getService(ctx);
      const response = await fetch(live.uri!, { signal: ctx.signal });
      const text = await response.text();
      expectThat(response.ok, `GET / answered ${response.status}`);
      return `GET / answered ${response.status}: ${text.trim().slice(0, 60)}`;
    });
    return [service, answers];
  },

  async teardown(ctx) {
    const c = ctx.config;
    await deleteIfPresent(ctx.log, `Cloud Run service ${c.serviceName}`, async () => {
      const [operation] = await ctx.clients.run.deleteService({ name: servicePath(c) });
      await operation.promise();
    });
  },
};

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import type { Clients } from '../../src/cloud/clients.js';
import type { Target } from '../../src/cloud/target.js';
import { DEFAULT_CONFIG } from '../../src/config.js';
import type { LabConfig } from '../../src/config.js';
import { LabError } from '../../src/errors.js';
import { Logger } from '../../src/log.js';
import { artifactRegistryFactory } from '../../src/local/artifactregistry/service.js';
import { dockerAnswers } from '../../src/local/build/runner.js';
import { buildFactory } from '../../src/local/build/service.js';
import { dataflowService } from '../../src/local/dataflow/service.js';
import type { RunningHost } from '../../src/local/host.js';
import { operationsFactory } from '../../src/local/operations.js';
import { storageServiceFactory } from '../../src/local/storage/service.js';
import { trackingJob } from '../../src/part2/05-dataflow.js';
import {
  TEMPLATE_SOURCE,
  ensureTemplateImage,
  templateImage,
  templateSourceObject,
} from '../../src/part2/template-image.js';
import { sourceBucket } from '../../src/steps/build.js';
import type { StepContext } from '../../src/steps/types.js';
import { testContext } from '../fixtures/context.js';
import type { TestHost } from '../local/host-fixture.js';
import { openTestHost } from '../local/host-fixture.js';

/**
 * Step 2.5's image build on each target. The Google Cloud branch runs with its Cloud Build,
 * Artifact Registry and Storage clients pointed at the local cloud's, so the build request it
 * makes is the one Google would receive. The local Cloud Build runs only `docker build` steps
 * without a Docker engine and fails any other step at once, naming it; with an engine it would
 * really clone and compile, so the test cancels the build instead. Either way the step must
 * stop with an error that names the build and its log. On the local target no build happens.
 */

const PROJECT = 'template-image-test';
const REGION = 'us-central1';
const config: LabConfig = { ...DEFAULT_CONFIG, project: PROJECT, region: REGION };

let local: TestHost;
let dir: string;
let host: RunningHost;
let clients: Clients;

beforeAll(async () => {
  local = await openTestHost({
    project: PROJECT,
    region: REGION,
    factories: [
      storageServiceFactory,
      operationsFactory,
      artifactRegistryFactory,
      buildFactory,
      dataflowService,
    ],
  });
  ({ dir, host, clients } = local);
});

afterAll(async () => {
  await local?.close();
});

/** A step context on `kind` whose clients reach the local cloud; log lines land in `lines`. */
function context(kind: Target['kind'], lines: string[]): StepContext {
  const target: Target =
    kind === 'gcp'
      ? { kind, projectId: PROJECT, region: REGION }
      : {
          kind,
          projectId: PROJECT,
          region: REGION,
          local: { api: host.endpoint, pubsub: '127.0.0.1:1' },
        };
  return testContext(dir, {}, new AbortController().signal, {
    config,
    target,
    clients,
    log: new Logger({ level: 'debug', write: (line) => lines.push(line) }),
    assetsRoot: process.cwd(),
  });
}

async function builds() {
  const [listed] = await clients.build.listBuilds({ projectId: PROJECT });
  return listed;
}

describe('step 2.5 on Google Cloud', () => {
  it('plans the image build before the spec and the job', async () => {
    const items = await trackingJob.plan(context('gcp', []));
    expect(items[0]).toEqual({
      action: 'create',
      resource: `image ${templateImage(config)}`,
      detail: `Cloud Build of ${TEMPLATE_SOURCE.repository} at ${TEMPLATE_SOURCE.commit.slice(0, 12)}`,
    });
    expect(items.map((i) => i.resource)).toEqual([
      `image ${templateImage(config)}`,
      `template spec gs://${PROJECT}_dataflow_template_config/video_analytics.json`,
      `Dataflow job ${config.videoJobName}`,
    ]);
  });

  it('sends the build to Cloud Build and stops with its id and log when it fails', async () => {
    const lines: string[] = [];
    const docker = await dockerAnswers();
    // With a Docker engine the local build would really clone and compile: cancel it once seen.
    let stop = true;
    const canceller = (async () => {
      while (docker && stop) {
        const [first] = await builds();
        if (first?.id) {
          await clients.build.cancelBuild({ projectId: PROJECT, id: first.id });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const error = await trackingJob.ensure(context('gcp', lines)).catch((e: unknown) => e);
    stop = false;
    await canceller;

    const [build, ...others] = await builds();
    expect(others).toHaveLength(0);
    expect(build?.steps?.map((s) => s.name)).toEqual([
      'gcr.io/cloud-builders/git',
      'gcr.io/cloud-builders/git',
      'gradle:6.9.4-jdk11',
      'gcr.io/cloud-builders/docker',
    ]);
    expect(build?.steps?.[1]?.args).toContain(TEMPLATE_SOURCE.commit);
    expect(build?.images).toContain(templateImage(config));
    expect(build?.source?.storageSource).toMatchObject({
      bucket: sourceBucket(config),
      object: templateSourceObject(),
    });
    const [uploaded] = await clients.storage
      .bucket(sourceBucket(config))
      .file(templateSourceObject())
      .exists();
    expect(uploaded).toBe(true);

    expect(error).toBeInstanceOf(LabError);
    const message = (error as LabError).message;
    expect(message).toContain(`Cloud Build build ${build?.id} ended as`);
    expect(message).toMatch(
      docker ? /CANCELLED/ : /FAILURE: Step #0 \(gcr\.io\/cloud-builders\/git\)/,
    );
    expect(message).toContain(`Its full log: ${build?.logUrl}`);
    expect((error as LabError).hint).toContain('cymbal-lab step 2.5 --force');
    expect(lines.some((l) => l.includes(`Cloud Build build ${build?.id} started`))).toBe(true);

    // The step stopped at the build: no job was launched from a missing image.
    const [jobs] = await clients.jobs.listJobs({ projectId: PROJECT, location: REGION });
    expect(jobs).toHaveLength(0);
  }, 60_000);
});

describe('step 2.5 on the local target', () => {
  it('plans no build and says why', async () => {
    const items = await trackingJob.plan(context('local', []));
    expect(items[0]).toEqual({
      action: 'keep',
      resource: `image ${templateImage(config)}`,
      detail: 'not built here: the local Dataflow service runs the video template itself',
    });
  });

  it('builds nothing and logs that the local Dataflow service runs the template', async () => {
    const before = (await builds()).length;
    const lines: string[] = [];
    expect(await ensureTemplateImage(context('local', lines))).toEqual({});
    expect(lines).toContain(
      `template image not built here: the local Dataflow service runs the video template itself`,
    );
    expect(await builds()).toHaveLength(before);
  });
});

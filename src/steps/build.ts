import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import type { protos } from '@google-cloud/cloudbuild';
import { create as createTar } from 'tar';

import type { LabConfig } from '../config.js';
import { LabError, errorMessage, isNotFound } from '../errors.js';
import type { Change } from './kit.js';
import { createOrKeep } from './kit.js';
import type { StepContext } from './types.js';

/**
 * Cloud Build and Artifact Registry tools that both parts use: the lab's Docker repository, the
 * bucket that holds build sources, the images in the repository, and one build followed from
 * creation to its end with its log copied to the learner.
 */

type Build = protos.google.devtools.cloudbuild.v1.IBuild;

const load = createRequire(import.meta.url);

/** The lab's Docker repository in Artifact Registry. */
export const repositoryPath = (c: LabConfig): string =>
  `projects/${c.project}/locations/${c.region}/repositories/${c.repository}`;

/** Where `gcloud builds submit` uploads sources, and so do we. */
export const sourceBucket = (c: LabConfig): string => `${c.project}_cloudbuild`;

/** Creates the lab's Docker repository, or keeps it. */
export async function ensureRepository(ctx: StepContext): Promise<Change> {
  const c = ctx.config;
  return createOrKeep(ctx.log, `repository ${c.repository}`, async () => {
    const [operation] = await ctx.clients.artifactRegistry.createRepository({
      parent: `projects/${c.project}/locations/${c.region}`,
      repositoryId: c.repository,
      repository: { format: 'DOCKER', description: 'Images of the Cymbal Direct lab' },
    });
    await operation.promise();
  });
}

/**
 * The image `name` carrying `tag` in the lab's repository, with its digest and every tag it
 * carries; undefined when there is none, or no repository yet.
 */
export async function findImage(
  ctx: StepContext,
  name: string,
  tag: string,
): Promise<{ digest: string; tags: string[] } | undefined> {
  let images;
  try {
    [images] = await ctx.clients.artifactRegistry.listDockerImages({
      parent: repositoryPath(ctx.config),
    });
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  for (const image of images) {
    const tags = image.tags ?? [];
    if (image.uri?.includes(`/${name}@`) && tags.includes(tag)) {
      return { digest: image.uri.slice(image.uri.indexOf('@') + 1), tags };
    }
  }
  return undefined;
}

/**
 * Packs `files` (relative to `root`) as a gzipped tar, as `gcloud builds submit` does, and
 * uploads it to the source bucket as `object`, creating the bucket on first use.
 */
export async function uploadSource(
  ctx: StepContext,
  root: string,
  files: string[],
  object: string,
): Promise<{ bucket: string; object: string }> {
  const c = ctx.config;
  const bucket = sourceBucket(c);
  await createOrKeep(ctx.log, `bucket ${bucket}`, () =>
    ctx.clients.storage.createBucket(bucket, { location: c.region }),
  );
  const archive = createTar({ gzip: true, cwd: root, portable: true }, files);
  await new Promise<void>((resolve, reject) => {
    const upload = ctx.clients.storage
      .bucket(bucket)
      .file(object)
      .createWriteStream({ contentType: 'application/gzip', resumable: false });
    archive.on('error', reject);
    upload.on('error', reject).on('finish', resolve);
    archive.pipe(upload);
  });
  ctx.log.info(`uploaded the build source to gs://${bucket}/${object}`);
  return { bucket, object };
}

/** A build status as its name (`SUCCESS`), whether the client gave a name or a number. */
export function buildStatus(status: unknown): string {
  if (typeof status === 'string') return status;
  const { protos: p } = load(
    '@google-cloud/cloudbuild',
  ) as typeof import('@google-cloud/cloudbuild');
  return p.google.devtools.cloudbuild.v1.Build.Status[Number(status)] ?? `STATUS_${String(status)}`;
}

/**
 * Creates a build and follows it to its end: every new line of its log, and each step as it
 * starts and ends, goes to the learner. Returns the finished build; a build that does not
 * succeed is a LabError naming the build, how it ended, and where its full log is, with `hint`
 * as the next action.
 */
export async function runCloudBuild(
  ctx: StepContext,
  request: Build,
  hint: string,
): Promise<Build> {
  const { build: client } = ctx.clients;
  const projectId = ctx.config.project;
  let operation;
  try {
    [operation] = await client.createBuild({ projectId, build: request });
  } catch (error) {
    throw new LabError(`Cloud Build did not accept the build: ${errorMessage(error)}`, {
      cause: error,
      hint,
    });
  }
  const started = (operation.metadata as { build?: Build } | undefined)?.build ?? {};
  const id = started.id ?? '';
  ctx.log.info(`Cloud Build build ${id} started; its log: ${started.logUrl ?? 'not given'}`);

  const follow = buildFollower(ctx);
  let running = true;
  const polling = (async () => {
    while (running && id) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      if (!running) break;
      try {
        const [current] = await client.getBuild({ projectId, id });
        await follow(current);
      } catch (error) {
        ctx.log.debug(`reading build ${id} failed: ${errorMessage(error)}`);
      }
    }
  })();

  let finished: Build | undefined;
  let failure: unknown;
  try {
    [finished] = await operation.promise();
  } catch (error) {
    failure = error;
  } finally {
    running = false;
    await polling;
  }
  // A failed build rejects its operation; the build itself says how it ended.
  if (!finished && id) {
    finished = await client.getBuild({ projectId, id }).then(
      ([b]) => b,
      () => undefined,
    );
  }
  if (finished) await follow(finished);
  const status = finished ? buildStatus(finished.status) : 'unknown';
  if (status !== 'SUCCESS') {
    const detail = finished?.statusDetail ?? (failure ? errorMessage(failure) : 'no detail');
    throw new LabError(
      `Cloud Build build ${id || '(no id)'} ended as ${status}: ${detail.trim()}\n` +
        `Its full log: ${finished?.logUrl ?? started.logUrl ?? 'not given'}`,
      { cause: failure, hint },
    );
  }
  return finished!;
}

/** Copies new lines of a build's log, and its steps' progress, to the learner. */
function buildFollower(ctx: StepContext): (build: Build) => Promise<void> {
  let shown = 0;
  const stepStates: string[] = [];
  return async (build) => {
    // The log first: a step that ended since the last look is reported after its lines.
    const text = await readBuildLog(ctx, build);
    if (text && text.length > shown) {
      for (const line of text.slice(shown).split('\n'))
        if (line.trim()) ctx.log.info(`  │ ${line}`);
      shown = text.length;
    }
    const steps = build.steps ?? [];
    steps.forEach((step, index) => {
      const state = buildStatus(step.status);
      const before = stepStates[index];
      if (before === state || state === 'QUEUED' || state === 'STATUS_UNKNOWN') return;
      // A step the build never reached ends as cancelled; that says nothing the build's end won't.
      if (state === 'CANCELLED' && before !== 'WORKING') return;
      stepStates[index] = state;
      const label = step.id ? `${step.id} (${step.name ?? ''})` : (step.name ?? '');
      ctx.log.info(`step ${index + 1}/${steps.length} ${label}: ${state.toLowerCase()}`);
    });
  };
}

/**
 * The build's log so far: from its logs bucket on Google Cloud, from the file the local Cloud
 * Build names in `logUrl`. Undefined until the log exists or when it cannot be read; the
 * build's `logUrl` stays the place to read it then.
 */
async function readBuildLog(ctx: StepContext, build: Build): Promise<string | undefined> {
  try {
    if (build.logsBucket?.startsWith('gs://') && build.id) {
      const [bucket, ...prefix] = build.logsBucket.slice(5).split('/');
      const object = [...prefix, `log-${build.id}.txt`].filter(Boolean).join('/');
      const [content] = await ctx.clients.storage.bucket(bucket!).file(object).download();
      return content.toString('utf8');
    }
    if (build.logUrl?.startsWith('file://')) {
      return await readFile(fileURLToPath(build.logUrl), 'utf8');
    }
  } catch {
    // The log appears a moment after the build starts; the next poll tries again.
  }
  return undefined;
}

import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { create as createTar } from 'tar';

import type { LabConfig } from '../config.js';
import { LabError } from '../errors.js';
import { check, createOrKeep, deleteIfPresent, exists, expectThat } from '../steps/kit.js';
import type { StepContext, StepDefinition } from '../steps/types.js';

export const imageUri = (c: LabConfig): string =>
  `${c.region}-docker.pkg.dev/${c.project}/${c.repository}/${c.serviceName}:${c.imageTag}`;

const repositoryPath = (c: LabConfig) =>
  `projects/${c.project}/locations/${c.region}/repositories/${c.repository}`;

/** Where `gcloud builds submit` uploads sources, and so do we. */
const sourceBucket = (c: LabConfig) => `${c.project}_cloudbuild`;

const APP_DIR = 'assets/ingest-app';
const SKIPPED = new Set(['node_modules', '.git']);

/** The app's files, sorted, without installed dependencies. */
async function sourceFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true, recursive: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)))
    .filter((path) => !path.split('/').some((part) => SKIPPED.has(part)))
    .sort();
}

/** A hash of the app's source: the image is rebuilt only when the source changed. */
async function sourceHash(root: string, files: string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const file of files) {
    hash
      .update(file)
      .update('\0')
      .update(await readFile(join(root, file)))
      .update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

/** Copies new lines of the build's log to the learner while the build runs. */
function logFollower(ctx: StepContext) {
  let shown = 0;
  return async (build: {
    id?: string | null;
    logsBucket?: string | null;
    logUrl?: string | null;
  }) => {
    let text: string | undefined;
    try {
      if (build.logsBucket?.startsWith('gs://') && build.id) {
        const [bucket, ...prefix] = build.logsBucket.slice(5).split('/');
        const object = [...prefix, `log-${build.id}.txt`].filter(Boolean).join('/');
        const [content] = await ctx.clients.storage.bucket(bucket!).file(object).download();
        text = content.toString('utf8');
      } else if (build.logUrl?.startsWith('file://')) {
        text = await readFile(fileURLToPath(build.logUrl), 'utf8');
      }
    } catch {
      // The log appears a moment after the build starts; the next poll tries again.
      return;
    }
    if (!text || text.length <= shown) return;
    for (const line of text.slice(shown).split('\n')) if (line.trim()) ctx.log.info(`  │ ${line}`);
    shown = text.length;
  };
}

async function runBuild(
  ctx: StepContext,
  hash: string,
  files: string[],
): Promise<{ digest: string }> {
  const c = ctx.config;
  const { storage, build } = ctx.clients;
  const root = join(ctx.assetsRoot, APP_DIR);
  await createOrKeep(ctx.log, `bucket ${sourceBucket(c)}`, () =>
    storage.createBucket(sourceBucket(c), { location: c.region }),
  );
  const object = `source/${c.serviceName}-${hash}.tgz`;
  const archive = createTar({ gzip: true, cwd: root, portable: true }, files);
  await new Promise<void>((resolve, reject) => {
    const upload = storage
      .bucket(sourceBucket(c))
      .file(object)
      .createWriteStream({ contentType: 'application/gzip', resumable: false });
    archive.on('error', reject);
    upload.on('error', reject).on('finish', resolve);
    archive.pipe(upload);
  });
  ctx.log.info(`uploaded the source to gs://${sourceBucket(c)}/${object}`);

  const [operation] = await build.createBuild({
    projectId: c.project,
    build: {
      source: { storageSource: { bucket: sourceBucket(c), object } },
      steps: [{ name: 'gcr.io/cloud-builders/docker', args: ['build', '-t', imageUri(c), '.'] }],
      images: [imageUri(c)],
      tags: ['cymbal-lab', c.serviceName],
    },
  });
  const follow = logFollower(ctx);
  const buildId = (operation.metadata as { build?: { id?: string } } | undefined)?.build?.id;
  const poller = setInterval(() => {
    if (!buildId) return;
    build.getBuild({ projectId: c.project, id: buildId }).then(
      ([b]) => follow(b),
      () => undefined,
    );
  }, 1_000);
  try {
    const [result] = await operation.promise();
    await follow(result);
    const status = String(result.status);
    if (status !== 'SUCCESS' && status !== '3') {
      throw new LabError(`The build ended as ${status}: ${result.statusDetail ?? 'no detail'}.`, {
        hint: 'Read the build log above, fix assets/ingest-app, and run `cymbal-lab step 2 --force`.',
      });
    }
    const digest = result.results?.images?.[0]?.digest;
    if (!digest) throw new Error('The build succeeded without reporting the image digest.');
    return { digest };
  } finally {
    clearInterval(poller);
  }
}

/** The image with this tag in Artifact Registry, if any, with its digest. */
async function registryImage(
  ctx: StepContext,
): Promise<{ digest: string; tags: string[] } | undefined> {
  const c = ctx.config;
  const [images] = await ctx.clients.artifactRegistry.listDockerImages({
    parent: repositoryPath(c),
  });
  for (const image of images) {
    const tags = image.tags ?? [];
    if (image.uri?.includes(`/${c.serviceName}@`) && tags.includes(c.imageTag)) {
      return { digest: image.uri.slice(image.uri.indexOf('@') + 1), tags };
    }
  }
  return undefined;
}

export const buildImage: StepDefinition = {
  part: 1,
  number: 2,
  title: 'Containerize the ingest app with Cloud Build',
  explain:
    'The ingest app receives e-commerce events over HTTP and hands them to Pub/Sub. Cloud ' +
    'Build turns its source into a container image and stores it in an Artifact Registry ' +
    'repository, where Cloud Run can find it.',
  commands: (c) => [
    `gcloud artifacts repositories create ${c.repository} --repository-format=docker --location=${c.region}`,
    `gcloud builds submit ${APP_DIR} --tag ${imageUri(c)}`,
  ],
  needs: ['project'],
  outputs: ['imageUri', 'imageDigest'],

  async plan(ctx) {
    const c = ctx.config;
    const root = join(ctx.assetsRoot, APP_DIR);
    const hash = await sourceHash(root, await sourceFiles(root));
    const repoExists = await exists(() =>
      ctx.clients.artifactRegistry.getRepository({ name: repositoryPath(c) }),
    );
    const image = repoExists ? await registryImage(ctx) : undefined;
    const current =
      image && ctx.outputs.sourceHash === hash && image.digest === ctx.outputs.imageDigest;
    return [
      {
        action: repoExists ? 'keep' : 'create',
        resource: `repository ${c.repository}`,
        detail: 'docker',
      },
      current
        ? { action: 'keep', resource: `image ${imageUri(c)}`, detail: image.digest }
        : { action: 'create', resource: `image ${imageUri(c)}`, detail: `build of source ${hash}` },
    ];
  },

  async ensure(ctx) {
    const c = ctx.config;
    const registry = ctx.clients.artifactRegistry;
    await createOrKeep(ctx.log, `repository ${c.repository}`, async () => {
      const [operation] = await registry.createRepository({
        parent: `projects/${c.project}/locations/${c.region}`,
        repositoryId: c.repository,
        repository: { format: 'DOCKER', description: 'Images of the Cymbal Direct lab' },
      });
      await operation.promise();
    });
    const root = join(ctx.assetsRoot, APP_DIR);
    const files = await sourceFiles(root);
    const hash = await sourceHash(root, files);
    const image = await registryImage(ctx);
    if (image && ctx.outputs.sourceHash === hash && image.digest === ctx.outputs.imageDigest) {
      ctx.log.info(`the image of source ${hash} is already built: ${image.digest}`);
      return { imageUri: imageUri(c), imageDigest: image.digest, sourceHash: hash };
    }
    const { digest } = await runBuild(ctx, hash, files);
    return { imageUri: imageUri(c), imageDigest: digest, sourceHash: hash };
  },

  async verify(ctx) {
    const c = ctx.config;
    return [
      await check(`repository ${c.repository}`, async () => {
        const [repository] = await ctx.clients.artifactRegistry.getRepository({
          name: repositoryPath(c),
        });
        expectThat(
          String(repository.format) === 'DOCKER' || String(repository.format) === '1',
          `format ${String(repository.format)}`,
        );
        return 'a docker repository';
      }),
      await check(`image ${c.serviceName}:${c.imageTag}`, async () => {
        const image = await registryImage(ctx);
        expectThat(image !== undefined, `no image tagged ${c.imageTag} in ${c.repository}`);
        expectThat(
          !ctx.outputs.imageDigest || image!.digest === ctx.outputs.imageDigest,
          `the tag points at ${image!.digest}, not the built ${ctx.outputs.imageDigest ?? ''}`,
        );
        return image!.digest;
      }),
    ];
  },

  async teardown(ctx) {
    const c = ctx.config;
    await deleteIfPresent(ctx.log, `repository ${c.repository}`, async () => {
      const [operation] = await ctx.clients.artifactRegistry.deleteRepository({
        name: repositoryPath(c),
      });
      await operation.promise();
    });
    if (ctx.outputs.sourceHash) {
      const object = `source/${c.serviceName}-${ctx.outputs.sourceHash}.tgz`;
      await deleteIfPresent(ctx.log, `gs://${sourceBucket(c)}/${object}`, () =>
        ctx.clients.storage.bucket(sourceBucket(c)).file(object).delete(),
      );
    }
  },
};

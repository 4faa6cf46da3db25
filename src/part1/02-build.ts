import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

import type { LabConfig } from '../config.js';
import {
  ensureRepository,
  findImage,
  repositoryPath,
  runCloudBuild,
  sourceBucket,
  uploadSource,
} from '../steps/build.js';
import { check, deleteIfPresent, exists, expectThat } from '../steps/kit.js';
import type { StepContext, StepDefinition } from '../steps/types.js';

export const imageUri = (c: LabConfig): string =>
  `${c.region}-docker.pkg.dev/${c.project}/${c.repository}/${c.serviceName}:${c.imageTag}`;

/** The uploaded source of one version of the app. */
const sourceObject = (c: LabConfig, hash: string) => `source/${c.serviceName}-${hash}.tgz`;

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

/** The build of the app's source into the image, as `gcloud builds submit --tag` makes it. */
async function runBuild(
  ctx: StepContext,
  hash: string,
  files: string[],
): Promise<{ digest: string }> {
  const c = ctx.config;
  const root = join(ctx.assetsRoot, APP_DIR);
  const source = await uploadSource(ctx, root, files, sourceObject(c, hash));
  const result = await runCloudBuild(
    ctx,
    {
      source: { storageSource: source },
      steps: [{ name: 'gcr.io/cloud-builders/docker', args: ['build', '-t', imageUri(c), '.'] }],
      images: [imageUri(c)],
      tags: ['cymbal-lab', c.serviceName],
    },
    'Read the build log above, fix assets/ingest-app, and run `cymbal-lab step 2 --force`.',
  );
  const digest = result.results?.images?.[0]?.digest;
  if (!digest) throw new Error('The build succeeded without reporting the image digest.');
  return { digest };
}

/** The image with this tag in Artifact Registry, if any, with its digest. */
const registryImage = (ctx: StepContext) =>
  findImage(ctx, ctx.config.serviceName, ctx.config.imageTag);

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
    await ensureRepository(ctx);
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
      const object = sourceObject(c, ctx.outputs.sourceHash);
      await deleteIfPresent(ctx.log, `gs://${sourceBucket(c)}/${object}`, () =>
        ctx.clients.storage.bucket(sourceBucket(c)).file(object).delete(),
      );
    }
  },
};

import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { protos } from '@google-cloud/cloudbuild';

import type { LabConfig } from '../config.js';
import {
  ensureRepository,
  findImage,
  repositoryPath,
  runCloudBuild,
  sourceBucket,
  uploadSource,
} from '../steps/build.js';
import { deleteIfPresent } from '../steps/kit.js';
import type { PlanItem, StepContext } from '../steps/types.js';

/**
 * The container image of Google's video analytics flex template. Google publishes the template
 * as source only, so on Google Cloud the step builds the image with Cloud Build from a pinned
 * commit of that source: clone it, compile it with the Gradle build it ships, and put the
 * compiled classes and their libraries on Google's Java launcher base image for flex templates.
 *
 * The first half of this file describes the build and performs no I/O; the second half runs it.
 */

/** Google's source of the template, and the commit the image is built from. */
export const TEMPLATE_SOURCE = {
  repository: 'https://github.com/GoogleCloudPlatform/dataflow-video-analytics.git',
  /** A commit whose options are the ones the lab passes (with `errorTopic`). */
  commit: '06994c8367e6c6d177da84291cd45d0c927877d0',
  mainClass: 'com.google.solutions.df.video.analytics.VideoAnalyticsPipeline',
  /** `rootProject.name` in its settings.gradle: the folder `installDist` writes to. */
  gradleProject: 'dataflow-video-analytics',
} as const;

/** The image's name in the lab's repository, and the tag the template spec names. */
export const TEMPLATE_IMAGE_NAME = 'dataflow-video-analytics';
export const TEMPLATE_IMAGE_TAG = 'latest';

/**
 * The template's build script declares its dependencies with the `compile` configuration,
 * which Gradle 7 removed: Gradle 6 builds it. JDK 11 matches the launcher base below.
 */
export const GRADLE_IMAGE = 'gradle:6.9.4-jdk11';

/**
 * Google's Java 11 base image for flex template launchers. The template's own build names the
 * Java 8 one, which Google no longer updates; the classes it compiles run on 11 unchanged.
 */
export const LAUNCHER_BASE_IMAGE = 'gcr.io/dataflow-templates-base/java11-template-launcher-base';

const imageBase = (c: LabConfig) =>
  `${c.region}-docker.pkg.dev/${c.project}/${c.repository}/${TEMPLATE_IMAGE_NAME}`;

/** The image the template spec names. */
export const templateImage = (c: LabConfig): string => `${imageBase(c)}:${TEMPLATE_IMAGE_TAG}`;

/** A second tag on the same image that says which commit of Google's source it was built from. */
export const commitTag = (commit: string = TEMPLATE_SOURCE.commit): string =>
  `git-${commit.slice(0, 12)}`;

/** Where the clone goes inside the build's workspace. */
const CLONE_DIR = 'dataflow-video-analytics';

/** What `gradle installDist` leaves: `lib/` with the template's jar and every jar it needs. */
const INSTALL_DIR = `${CLONE_DIR}/build/install/${TEMPLATE_SOURCE.gradleProject}`;

/**
 * The launcher image: the compiled template and its libraries on Google's launcher base, which
 * starts the main class with this classpath when Dataflow launches the template.
 */
export function launcherDockerfile(): string {
  return [
    `FROM ${LAUNCHER_BASE_IMAGE}:latest`,
    'COPY lib/ /template/lib/',
    `ENV FLEX_TEMPLATE_JAVA_MAIN_CLASS=${TEMPLATE_SOURCE.mainClass}`,
    'ENV FLEX_TEMPLATE_JAVA_CLASSPATH=/template/lib/*',
    'ENTRYPOINT ["/opt/google/dataflow/java_template_launcher"]',
    '',
  ].join('\n');
}

/**
 * The Cloud Build build of the image. Its source is an archive holding only the Dockerfile
 * (see `templateBuildFiles`); the steps clone Google's repository at the pinned commit next to
 * it, build the template with Gradle, and build the launcher image from the installed jars.
 * Cloud Build pushes both tags when every step has succeeded.
 */
export function templateImageBuild(
  c: LabConfig,
  source: { bucket: string; object: string },
): protos.google.devtools.cloudbuild.v1.IBuild {
  const commitImage = `${imageBase(c)}:${commitTag()}`;
  return {
    source: { storageSource: source },
    steps: [
      {
        id: 'clone',
        name: 'gcr.io/cloud-builders/git',
        args: ['clone', '--quiet', TEMPLATE_SOURCE.repository, CLONE_DIR],
      },
      {
        id: 'checkout',
        name: 'gcr.io/cloud-builders/git',
        args: ['-C', CLONE_DIR, 'checkout', '--quiet', '--detach', TEMPLATE_SOURCE.commit],
      },
      {
        id: 'compile',
        name: GRADLE_IMAGE,
        entrypoint: 'gradle',
        dir: CLONE_DIR,
        args: [
          '--no-daemon',
          '--console=plain',
          `-DmainClass=${TEMPLATE_SOURCE.mainClass}`,
          'installDist',
        ],
      },
      {
        id: 'image',
        name: 'gcr.io/cloud-builders/docker',
        args: ['build', '-t', templateImage(c), '-t', commitImage, '-f', 'Dockerfile', INSTALL_DIR],
      },
    ],
    images: [templateImage(c), commitImage],
    // Gradle downloads Beam and its dependencies first: minutes, well within half an hour.
    timeout: { seconds: 1_800 },
    tags: ['cymbal-lab', TEMPLATE_IMAGE_NAME],
  };
}

/** The files of the build's source archive, by name. */
export function templateBuildFiles(): Record<string, string> {
  return { Dockerfile: launcherDockerfile() };
}

/** The source archive's object: named by its content and the commit, so a change uploads anew. */
export function templateSourceObject(): string {
  const hash = createHash('sha256')
    .update(TEMPLATE_SOURCE.commit)
    .update('\0')
    .update(JSON.stringify(templateBuildFiles()))
    .digest('hex')
    .slice(0, 16);
  return `source/${TEMPLATE_IMAGE_NAME}-${hash}.tgz`;
}

/** The same as commands a learner can type, for the step's `commands`. */
export function templateImageCommands(c: LabConfig, specPath: string): string[] {
  const { repository, commit, mainClass } = TEMPLATE_SOURCE;
  return [
    `git clone ${repository} ${CLONE_DIR} && git -C ${CLONE_DIR} checkout ${commit}`,
    `(cd ${CLONE_DIR} && gradle installDist -DmainClass=${mainClass})  # Gradle 6, JDK 11`,
    `gcloud dataflow flex-template build ${specPath} --image-gcr-path ${templateImage(c)} ` +
      `--sdk-language JAVA --flex-template-base-image JAVA11 ` +
      `--jar "$(ls ${INSTALL_DIR}/lib/*.jar | paste -sd, -)" ` +
      `--env FLEX_TEMPLATE_JAVA_MAIN_CLASS=${mainClass}`,
  ];
}

/**
 * Whether the target needs the image. The local Dataflow service runs the video template as a
 * program of its own (src/local/dataflow/templates.ts) and never pulls the image, so only
 * Google Cloud gets it built.
 */
export const needsTemplateImage = (ctx: StepContext): boolean => ctx.target.kind === 'gcp';

const LOCAL_NOTE = 'not built here: the local Dataflow service runs the video template itself';

const packagePath = (c: LabConfig) => `${repositoryPath(c)}/packages/${TEMPLATE_IMAGE_NAME}`;

/** What the step would do about the image. */
export async function planTemplateImage(ctx: StepContext): Promise<PlanItem[]> {
  const c = ctx.config;
  const resource = `image ${templateImage(c)}`;
  if (!needsTemplateImage(ctx)) return [{ action: 'keep', resource, detail: LOCAL_NOTE }];
  const found = await findImage(ctx, TEMPLATE_IMAGE_NAME, TEMPLATE_IMAGE_TAG);
  const build = `Cloud Build of ${TEMPLATE_SOURCE.repository} at ${TEMPLATE_SOURCE.commit.slice(0, 12)}`;
  if (!found) return [{ action: 'create', resource, detail: build }];
  if (ctx.options.force) return [{ action: 'update', resource, detail: `${build} (--force)` }];
  return [{ action: 'keep', resource, detail: `${found.digest}, ${origin(found.tags)}` }];
}

/** Which source an image in the repository came from, as far as its tags tell. */
function origin(tags: string[]): string {
  if (tags.includes(commitTag())) return 'built from the pinned commit';
  const other = tags.find((t) => t.startsWith('git-'));
  return other
    ? `built from commit ${other.slice(4)}; --force builds the pinned one`
    : 'not built by cymbal-lab; --force builds it from the pinned commit';
}

/**
 * Builds the image when the target needs it and the repository lacks it (or the run is
 * forced). Returns what to record: the digest the template spec's tag points at, and the
 * source object when a build ran.
 */
export async function ensureTemplateImage(ctx: StepContext): Promise<Record<string, string>> {
  const c = ctx.config;
  if (!needsTemplateImage(ctx)) {
    ctx.log.info(`template image ${LOCAL_NOTE}`);
    return {};
  }
  const repository = await ensureRepository(ctx);
  // Kept from earlier runs, so that teardown still knows what this step made.
  const recorded: Record<string, string> = {};
  if (repository === 'created' || ctx.outputs.templateRepositoryCreated === 'true')
    recorded.templateRepositoryCreated = 'true';
  if (ctx.outputs.templateSourceObject)
    recorded.templateSourceObject = ctx.outputs.templateSourceObject;
  const found = await findImage(ctx, TEMPLATE_IMAGE_NAME, TEMPLATE_IMAGE_TAG);
  if (found && !ctx.options.force) {
    ctx.log.info(`kept image ${templateImage(c)} (${found.digest}, ${origin(found.tags)})`);
    return { ...recorded, templateImageDigest: found.digest };
  }
  ctx.log.info(
    `building ${templateImage(c)} from ${TEMPLATE_SOURCE.repository} at ` +
      `${TEMPLATE_SOURCE.commit} with Cloud Build (several minutes)`,
  );
  const source = await uploadBuildSource(ctx);
  const result = await runCloudBuild(
    ctx,
    templateImageBuild(c, source),
    'Read the build log above; `cymbal-lab step 2.5 --force` builds the image again.',
  );
  const digest = result.results?.images?.find((i) => i.name === templateImage(c))?.digest;
  if (!digest) throw new Error('The template image build succeeded without reporting a digest.');
  ctx.log.info(`built ${templateImage(c)}: ${digest}`);
  return { ...recorded, templateImageDigest: digest, templateSourceObject: source.object };
}

async function uploadBuildSource(ctx: StepContext): Promise<{ bucket: string; object: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'cymbal-template-'));
  try {
    const files = Object.entries(templateBuildFiles());
    for (const [name, text] of files) await writeFile(join(dir, name), text);
    return await uploadSource(
      ctx,
      dir,
      files.map(([name]) => name),
      templateSourceObject(),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Removes the image (both tags) and its uploaded source. The repository goes too when this
 * step created it and nothing else is left in it; otherwise Part 1 step 2 owns it.
 */
export async function removeTemplateImage(ctx: StepContext): Promise<void> {
  const c = ctx.config;
  if (!needsTemplateImage(ctx)) return;
  const registry = ctx.clients.artifactRegistry;
  await deleteIfPresent(ctx.log, `image ${TEMPLATE_IMAGE_NAME} in ${c.repository}`, async () => {
    const [operation] = await registry.deletePackage({ name: packagePath(c) });
    await operation.promise();
  });
  const object = ctx.outputs.templateSourceObject;
  if (object) {
    await deleteIfPresent(ctx.log, `gs://${sourceBucket(c)}/${object}`, () =>
      ctx.clients.storage.bucket(sourceBucket(c)).file(object).delete(),
    );
  }
  if (ctx.outputs.templateRepositoryCreated === 'true') {
    const [images] = await registry
      .listDockerImages({ parent: repositoryPath(c) })
      .catch(() => [[]] as const);
    if (images.length > 0) return;
    await deleteIfPresent(ctx.log, `repository ${c.repository}`, async () => {
      const [operation] = await registry.deleteRepository({ name: repositoryPath(c) });
      await operation.promise();
    });
  }
}

import { describe, expect, it } from '@jest/globals';

import { DEFAULT_CONFIG } from '../../src/config.js';
import type { LabConfig } from '../../src/config.js';
import { specPath } from '../../src/part2/05-dataflow.js';
import {
  GRADLE_IMAGE,
  LAUNCHER_BASE_IMAGE,
  TEMPLATE_SOURCE,
  commitTag,
  launcherDockerfile,
  templateBuildFiles,
  templateImage,
  templateImageBuild,
  templateImageCommands,
  templateSourceObject,
} from '../../src/part2/template-image.js';

/**
 * The Cloud Build build of Google's video analytics template image, as data: what it clones
 * and at which commit, how it compiles, what image it makes and what Cloud Build pushes.
 */

const config: LabConfig = {
  ...DEFAULT_CONFIG,
  project: 'acme-video',
  region: 'europe-west1',
  repository: 'lab-images',
};
const source = { bucket: 'acme-video_cloudbuild', object: templateSourceObject() };
const build = templateImageBuild(config, source);
const steps = build.steps ?? [];
const byId = (id: string) => {
  const step = steps.find((s) => s.id === id);
  if (!step) throw new Error(`no step ${id}`);
  return step;
};

describe('the template image build', () => {
  it('names the image the template spec names, in the lab repository', () => {
    expect(templateImage(config)).toBe(
      'europe-west1-docker.pkg.dev/acme-video/lab-images/dataflow-video-analytics:latest',
    );
  });

  it('clones Google’s repository and checks out the pinned commit', () => {
    expect(TEMPLATE_SOURCE.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(steps.map((s) => s.id)).toEqual(['clone', 'checkout', 'compile', 'image']);
    const clone = byId('clone');
    expect(clone.name).toBe('gcr.io/cloud-builders/git');
    expect(clone.args).toContain(
      'https://github.com/GoogleCloudPlatform/dataflow-video-analytics.git',
    );
    const folder = clone.args?.at(-1);
    const checkout = byId('checkout');
    expect(checkout.name).toBe('gcr.io/cloud-builders/git');
    expect(checkout.args).toEqual([
      '-C',
      folder,
      'checkout',
      '--quiet',
      '--detach',
      TEMPLATE_SOURCE.commit,
    ]);
  });

  it('compiles in the clone with Gradle 6 and the template’s main class', () => {
    const compile = byId('compile');
    expect(compile.name).toBe(GRADLE_IMAGE);
    expect(GRADLE_IMAGE).toMatch(/^gradle:6\./);
    expect(compile.entrypoint).toBe('gradle');
    expect(compile.dir).toBe(byId('clone').args?.at(-1));
    expect(compile.args).toContain('installDist');
    expect(compile.args).toContain(
      '-DmainClass=com.google.solutions.df.video.analytics.VideoAnalyticsPipeline',
    );
  });

  it('builds the launcher image from what Gradle installed, with both tags', () => {
    const image = byId('image');
    expect(image.name).toBe('gcr.io/cloud-builders/docker');
    const args = image.args ?? [];
    expect(args[0]).toBe('build');
    const tags = args.flatMap((arg, i) => (args[i - 1] === '-t' ? [arg] : []));
    expect(tags).toEqual([
      templateImage(config),
      templateImage(config).replace(/:latest$/, `:${commitTag()}`),
    ]);
    expect(args[args.indexOf('-f') + 1]).toBe('Dockerfile');
    // The context is where `installDist` of the settings' root project writes its jars.
    expect(args.at(-1)).toBe(
      `${byId('compile').dir}/build/install/${TEMPLATE_SOURCE.gradleProject}`,
    );
    expect(commitTag()).toBe(`git-${TEMPLATE_SOURCE.commit.slice(0, 12)}`);
  });

  it('has Cloud Build push exactly the tags the docker step makes', () => {
    const image = byId('image').args ?? [];
    const tagged = image.flatMap((arg, i) => (image[i - 1] === '-t' ? [arg] : []));
    expect(build.images).toEqual(tagged);
    expect(build.images?.[0]).toBe(templateImage(config));
  });

  it('takes the Dockerfile from the uploaded source and allows Gradle its time', () => {
    expect(build.source).toEqual({ storageSource: source });
    expect(Object.keys(templateBuildFiles())).toEqual(['Dockerfile']);
    expect(Number(build.timeout?.seconds)).toBeGreaterThanOrEqual(1_200);
    expect(build.tags).toContain('cymbal-lab');
    expect(templateSourceObject()).toMatch(/^source\/dataflow-video-analytics-[0-9a-f]{16}\.tgz$/);
    expect(templateSourceObject()).toBe(templateSourceObject());
  });

  it('puts the jars on Google’s Java launcher base with the main class and classpath', () => {
    const lines = launcherDockerfile().trim().split('\n');
    expect(lines[0]).toBe(`FROM ${LAUNCHER_BASE_IMAGE}:latest`);
    expect(LAUNCHER_BASE_IMAGE).toBe(
      'gcr.io/dataflow-templates-base/java11-template-launcher-base',
    );
    expect(lines).toContain('COPY lib/ /template/lib/');
    expect(lines).toContain(
      'ENV FLEX_TEMPLATE_JAVA_MAIN_CLASS=com.google.solutions.df.video.analytics.VideoAnalyticsPipeline',
    );
    expect(lines).toContain('ENV FLEX_TEMPLATE_JAVA_CLASSPATH=/template/lib/*');
  });

  it('shows the same as commands: clone at the commit, compile, build the template', () => {
    const commands = templateImageCommands(config, specPath(config));
    expect(commands[0]).toContain(`checkout ${TEMPLATE_SOURCE.commit}`);
    expect(commands[1]).toContain('gradle installDist');
    expect(commands[2]).toMatch(
      /^gcloud dataflow flex-template build gs:\/\/\S+\/video_analytics\.json /,
    );
    expect(commands[2]).toContain(`--image-gcr-path ${templateImage(config)}`);
    expect(commands[2]).toContain(`FLEX_TEMPLATE_JAVA_MAIN_CLASS=${TEMPLATE_SOURCE.mainClass}`);
  });
});

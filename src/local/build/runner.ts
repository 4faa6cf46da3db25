import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { cp, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

import type { ArtifactRegistryService } from '../artifactregistry/service.js';
import { digestOfFolder } from '../artifactregistry/registry.js';
import type { FolderDigest, ImageRecord } from '../artifactregistry/registry.js';
import type { StorageService } from '../storage/service.js';
import { fetchSource } from './source.js';

/**
 * What one build does, in Cloud Build's phases (FETCHSOURCE, BUILD, PUSH), each written to the
 * build's log:
 * - with a Docker engine, `docker build` of the uploaded source, as Cloud Build would;
 * - without one, a Node image: the source with its production dependencies installed
 *   (`npm ci --omit=dev`, or `npm install --omit=dev` without a lockfile), which Cloud Run starts
 *   with `npm start`. An image built from the same source before is reused.
 * Then every image name is pushed (tagged) to the local registry.
 */

/** Why a build failed, as Cloud Build's `failureInfo.type` names it. */
export type FailureType = 'FETCH_SOURCE_FAILED' | 'USER_BUILD_STEP' | 'PUSH_FAILED';

export class BuildFailure extends Error {
  constructor(
    readonly type: FailureType,
    message: string,
    readonly stepIndex?: number,
  ) {
    super(message);
    this.name = 'BuildFailure';
  }
}

export interface BuildStepJson {
  name: string;
  args?: string[];
  dir?: string;
  env?: string[];
  id?: string;
  status?: string;
  exitCode?: number;
}

export interface BuildPlan {
  id: string;
  source: { bucket: string; object: string };
  steps: BuildStepJson[];
  /** Image names to push, with substitutions already applied. */
  images: string[];
}

export interface BuildEnvironment {
  storage: StorageService;
  artifacts: ArtifactRegistryService;
  /** True when `docker info` answered when the service started. */
  docker: boolean;
  workDir: string;
  logFile: string;
  signal: AbortSignal;
  /** Called when a step starts or ends, so the build resource can show it. */
  onStep(index: number, status: 'WORKING' | 'SUCCESS' | 'FAILURE'): void;
}

export interface BuildOutput {
  images: Array<{ name: string; digest: string }>;
}

const DOCKER_BUILDERS = /^(gcr\.io\/cloud-builders\/docker|docker)(:.*)?$/;

/** The step that builds the image: a `docker build` (Cloud Build's docker builder). */
export function isDockerBuildStep(step: BuildStepJson): boolean {
  return DOCKER_BUILDERS.test(step.name) && step.args?.[0] === 'build';
}

/** The names a `docker build` step tags (`-t NAME`, `--tag NAME`, `--tag=NAME`). */
export function dockerTags(step: BuildStepJson): string[] {
  const args = step.args ?? [];
  const tags: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] ?? '';
    if ((arg === '-t' || arg === '--tag') && args[i + 1]) tags.push(args[(i += 1)] ?? '');
    else if (arg.startsWith('--tag=')) tags.push(arg.slice('--tag='.length));
  }
  return tags;
}

export async function executeBuild(plan: BuildPlan, env: BuildEnvironment): Promise<BuildOutput> {
  const say = (line: string): void => appendFileSync(env.logFile, `${line}\n`);
  const sourceDir = join(env.workDir, 'source');
  try {
    say('FETCHSOURCE');
    say(`Fetching storage object: gs://${plan.source.bucket}/${plan.source.object}`);
    try {
      await fetchSource(env.storage, plan.source, sourceDir);
    } catch (error) {
      throw new BuildFailure('FETCH_SOURCE_FAILED', messageOf(error));
    }
    const source = await digestOfFolder(sourceDir);
    say(`Source unpacked; its content hash is ${source.digest}.`);
    say('BUILD');
    const image = env.docker
      ? await dockerBuild(plan, env, sourceDir, source.digest, say)
      : await nodeBuild(plan, env, sourceDir, source, say);
    say('PUSH');
    const images: BuildOutput['images'] = [];
    for (const name of plan.images) {
      try {
        env.artifacts.repositoryOf(name);
      } catch (error) {
        throw new BuildFailure('PUSH_FAILED', messageOf(error));
      }
      const reference = await env.artifacts.registry.tag(name, image.digest);
      say(`Pushing ${reference}: digest ${image.digest}`);
      images.push({ name: reference, digest: image.digest });
    }
    say('DONE');
    return { images };
  } catch (error) {
    say(`ERROR: ${messageOf(error)}`);
    throw error;
  } finally {
    await rm(sourceDir, { recursive: true, force: true });
  }
}

/**
 * Without Docker only the image-building step can run; any other step (a test runner image, a
 * deploy step) would need its builder image, so the build fails at once and says so.
 */
function imageStep(plan: BuildPlan): number {
  const other = plan.steps.findIndex((step) => !isDockerBuildStep(step));
  if (other >= 0) {
    const step = plan.steps[other];
    throw new BuildFailure(
      'USER_BUILD_STEP',
      `Step #${other} (${step?.name}) needs a Docker engine, which this machine lacks; without ` +
        'one only `docker build` steps run, as Node builds. Start Docker and retry, or keep ' +
        'only the image build in the build config.',
      other,
    );
  }
  return 0;
}

async function nodeBuild(
  plan: BuildPlan,
  env: BuildEnvironment,
  sourceDir: string,
  source: FolderDigest,
  say: (line: string) => void,
): Promise<ImageRecord> {
  const index = plan.steps.length > 0 ? imageStep(plan) : -1;
  const contextDir = join(sourceDir, lastArg(plan.steps[index]) ?? '.');
  env.onStep(index, 'WORKING');
  say('No Docker engine answers here: building a Node image (production dependencies installed).');
  try {
    const packageFile = join(contextDir, 'package.json');
    if (!existsSync(packageFile)) {
      throw stepFailure(
        index,
        'The source has no package.json; a Node image needs one at its root.',
      );
    }
    let manifest: { scripts?: Record<string, string> };
    try {
      manifest = JSON.parse(readFileSync(packageFile, 'utf8')) as typeof manifest;
    } catch (error) {
      throw stepFailure(index, `package.json is not valid JSON: ${messageOf(error)}`);
    }
    if (!manifest.scripts?.start && !existsSync(join(contextDir, 'server.js'))) {
      throw stepFailure(
        index,
        'package.json has no "start" script (and there is no server.js): Cloud Run starts the image with `npm start`.',
      );
    }
    const cached = env.artifacts.registry.bySource(source.digest, 'node');
    if (cached) {
      say(`Reusing image ${cached.digest}, built earlier from the same source.`);
      env.onStep(index, 'SUCCESS');
      return cached;
    }
    const imageDir = join(env.workDir, 'image');
    const finishImage = async (dir: string, dependencies: FolderDigest): Promise<ImageRecord> => {
      const image = await env.artifacts.registry.addNodeImage(dir, source, dependencies);
      say(`Built image ${image.digest} (${Math.round(image.sizeBytes / 1024)} KiB).`);
      env.onStep(index, 'SUCCESS');
      return image;
    };
    await rm(imageDir, { recursive: true, force: true });
    await cp(contextDir, imageDir, {
      recursive: true,
      filter: (from) => !from.endsWith('/node_modules'),
    });
    const lockfile = existsSync(join(imageDir, 'package-lock.json'));
    const layer = lockfile ? dependencyLayer(imageDir) : undefined;
    const reused = layer ? await reuseLayer(layer, join(imageDir, 'node_modules')) : undefined;
    if (reused) {
      say(`Reusing the dependencies installed for the same lockfile earlier (${layer}).`);
      return finishImage(imageDir, reused);
    }
    const args = [
      lockfile ? 'ci' : 'install',
      '--omit=dev',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
    ];
    say(`Running npm ${args.join(' ')}`);
    const code = await run('npm', args, imageDir, env.logFile, env.signal);
    if (code !== 0) throw stepFailure(index, `npm ${args[0]} exited with code ${code}.`);
    const modules = join(imageDir, 'node_modules');
    const dependencies = existsSync(modules)
      ? await digestOfFolder(modules)
      : { digest: 'sha256:none', sizeBytes: 0 };
    if (layer && existsSync(modules)) await keepLayer(modules, dependencies, layer, say);
    return finishImage(imageDir, dependencies);
  } catch (error) {
    env.onStep(index, 'FAILURE');
    throw error;
  }
}

async function dockerBuild(
  plan: BuildPlan,
  env: BuildEnvironment,
  sourceDir: string,
  sourceHash: string,
  say: (line: string) => void,
): Promise<ImageRecord> {
  let built: string | undefined;
  for (const [index, step] of plan.steps.entries()) {
    env.onStep(index, 'WORKING');
    const args = [...(step.args ?? [])];
    // Cloud Build's network does not exist here; the default network serves the same purpose.
    const network = args.indexOf('--network');
    if (network >= 0 && args[network + 1] === 'cloudbuild') args.splice(network, 2);
    // Other steps run their builder image with the source mounted, as Cloud Build does.
    const command = 'docker';
    const fullArgs = isDockerBuildStep(step)
      ? args
      : ['run', '--rm', '-v', `${sourceDir}:/workspace`, '-w', '/workspace', step.name, ...args];
    say(`Step #${index}: ${command} ${fullArgs.join(' ')}`);
    const code = await run(
      command,
      fullArgs,
      join(sourceDir, step.dir ?? '.'),
      env.logFile,
      env.signal,
    );
    env.onStep(index, code === 0 ? 'SUCCESS' : 'FAILURE');
    if (code !== 0) throw stepFailure(index, `Step #${index} exited with code ${code}.`);
    if (isDockerBuildStep(step)) built = dockerTags(step)[0] ?? built;
  }
  const name = built ?? plan.images[0];
  if (!name) throw new BuildFailure('PUSH_FAILED', 'The build names no image to push.');
  const inspect = await capture('docker', ['image', 'inspect', '-f', '{{.Id}} {{.Size}}', name]);
  const [id = '', size = '0'] = inspect.trim().split(' ');
  return env.artifacts.registry.addDockerImage(id, sourceHash, Number(size));
}

/**
 * Where the dependencies installed from a lockfile are kept for later builds, like the layer
 * Docker caches for `COPY package*.json` then `RUN npm ci`: the key covers both files, the Node
 * version and the platform, so a build reuses only what `npm ci` would install again. Shared by
 * every state directory of the user (`~/.cache/cymbal-lab/node-deps`).
 */
function dependencyLayer(imageDir: string): string {
  const hash = createHash('sha256');
  for (const file of ['package.json', 'package-lock.json']) {
    hash.update(readFileSync(join(imageDir, file)));
    hash.update('\0');
  }
  hash.update(`${process.version} ${process.platform} ${process.arch}`);
  const env = process.env;
  const cache =
    env.CYMBAL_LAB_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cymbal-lab');
  return join(cache, 'node-deps', hash.digest('hex').slice(0, 32));
}

async function keepLayer(
  from: string,
  digest: FolderDigest,
  layer: string,
  say: (line: string) => void,
): Promise<void> {
  const temporary = `${layer}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(layer), { recursive: true });
    await copyTree(from, temporary);
    await writeFile(`${temporary}/.cymbal-layer.json`, JSON.stringify(digest));
    await rename(temporary, layer);
  } catch (error) {
    // The cache only saves time; a build that could not fill it is still a good build.
    await rm(temporary, { recursive: true, force: true });
    say(`Note: the dependencies could not be cached for later builds: ${messageOf(error)}`);
  }
}

/** Copies a kept layer into an image; undefined when there is none (or it is incomplete). */
async function reuseLayer(layer: string, into: string): Promise<FolderDigest | undefined> {
  const marker = join(layer, '.cymbal-layer.json');
  if (!existsSync(marker)) return undefined;
  const digest = JSON.parse(readFileSync(marker, 'utf8')) as FolderDigest;
  await copyTree(layer, into);
  await rm(join(into, '.cymbal-layer.json'), { force: true });
  return digest;
}

/** `cp -a`: much faster than a file-by-file copy from JavaScript for thousands of small files. */
async function copyTree(from: string, to: string): Promise<void> {
  const code = await new Promise<number>((resolve) => {
    const child = spawn('cp', ['-a', from, to], { stdio: 'ignore' });
    child.once('error', () => resolve(-1));
    child.once('close', (c) => resolve(c ?? 1));
  });
  if (code !== 0) await cp(from, to, { recursive: true, verbatimSymlinks: true });
}

function stepFailure(index: number, message: string): BuildFailure {
  return new BuildFailure('USER_BUILD_STEP', message, index >= 0 ? index : undefined);
}

function lastArg(step: BuildStepJson | undefined): string | undefined {
  const last = step?.args?.at(-1);
  return last && !last.startsWith('-') ? last : undefined;
}

/** Runs a command with its output appended to the log; resolves with its exit code. */
function run(
  command: string,
  args: string[],
  cwd: string,
  logFile: string,
  signal: AbortSignal,
): Promise<number> {
  const fd = openSync(logFile, 'a');
  return new Promise<number>((resolve) => {
    const child = spawn(command, args, {
      cwd,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, NODE_ENV: 'production' },
      detached: true,
    });
    const stop = (): void => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }
    };
    signal.addEventListener('abort', stop, { once: true });
    child.once('error', (error) => {
      appendFileSync(logFile, `${command} could not start: ${error.message}\n`);
    });
    child.once('close', (code) => {
      signal.removeEventListener('abort', stop);
      resolve(code ?? 1);
    });
  }).finally(() => closeSync(fd));
}

function capture(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${command} ${args[0]} exited with ${code}`)),
    );
  });
}

/** True when a Docker engine answers `docker info` within a few seconds. */
export async function dockerAnswers(): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('error', () => resolve(false));
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve(code === 0);
    });
  });
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

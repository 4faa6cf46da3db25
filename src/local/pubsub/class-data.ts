import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

import { errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { Supervisor, isProcessAlive } from '../supervisor.js';
import type { EmulatorCommand } from './locate.js';
import { freePort } from './ports.js';
import { emulatorAnswers, emulatorCall } from './rest.js';

/**
 * A class-data archive for the emulator's JVM. Most of the JVM's start-up goes into loading and
 * verifying the jar's classes; an archive of them, mapped at start, takes the emulator from about
 * 1.5 s to 0.6 s on an idle machine here.
 *
 * The archive is written by a JVM when it exits. Rather than make the user's emulator do that
 * (it would slow `local stop` by seconds, more on a busy machine), a separate, low-priority
 * emulator is run once in the background: it starts, serves a few requests so that their classes
 * load too, and exits. The archive lives in the user's cache directory, keyed by java and jar, so
 * every state directory shares it.
 */

export interface ClassDataArchive {
  file: string;
  exists: boolean;
}

/** Where the archive for this jar and java lives; undefined when the cache can't be written. */
export function classDataArchive(
  command: EmulatorCommand,
  env: NodeJS.ProcessEnv,
): ClassDataArchive | undefined {
  if (env.CYMBAL_LAB_PUBSUB_CDS === '0') return undefined;
  try {
    const cacheDir =
      env.CYMBAL_LAB_CACHE_DIR ??
      join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cymbal-lab');
    mkdirSync(cacheDir, { recursive: true });
    removeAbandoned(cacheDir);
    const jar = statSync(command.jar);
    const key = createHash('sha256')
      .update(`${command.java}\n${command.jar}\n${jar.size}\n${jar.mtimeMs}\n${process.arch}`)
      .digest('hex')
      .slice(0, 16);
    const file = join(cacheDir, `pubsub-emulator-${key}.jsa`);
    return { file, exists: existsSync(file) };
  } catch {
    return undefined;
  }
}

export interface ArchiveBuild {
  /** Settles when the archive is written or the build gave up; never rejects. */
  readonly done: Promise<void>;
  /** Ends the build at once (its half-written file is deleted). */
  cancel(): Promise<void>;
}

export function buildClassDataArchive(
  command: EmulatorCommand,
  archive: ClassDataArchive,
  workDir: string,
  log: Logger,
): ArchiveBuild {
  const temporary = `${archive.file}.${process.pid}.tmp`;
  let builder: Supervisor | undefined;
  let cancelled = false;
  const build = async (): Promise<void> => {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const nice = findNice();
    const javaArgs = [
      '-Xmx128m',
      '-XX:+UseSerialGC',
      '-Djava.net.preferIPv4Stack=true',
      `-XX:ArchiveClassesAtExit=${temporary}`,
      ...command.programArgs,
      '--host=127.0.0.1',
      `--port=${port}`,
    ];
    builder = new Supervisor({
      name: 'pubsub-class-data',
      command: nice ?? command.java,
      args: nice ? ['-n', '10', command.java, ...javaArgs] : javaArgs,
      cwd: workDir,
      logFile: join(workDir, 'class-data.log'),
      log,
    });
    if (cancelled) return;
    const running = builder;
    let killed = false;
    running.once('exit', (exit) => (killed = exit.signal === 'SIGKILL'));
    try {
      await running.start({ probe: () => emulatorAnswers(host, 1_000), timeoutMs: 180_000 });
      // Requests that fail only leave their classes out of the archive.
      await exercise(host).catch((error: unknown) =>
        log.debug('class-data warm-up request failed: %s', errorMessage(error)),
      );
    } finally {
      await running.stop('SIGTERM', 180_000);
    }
    if (!killed && !cancelled && existsSync(temporary) && statSync(temporary).size > 0) {
      renameSync(temporary, archive.file);
      log.debug('wrote the emulator class-data archive %s', archive.file);
    }
  };
  const done = build()
    .catch((error: unknown) => {
      log.debug('could not build the emulator class-data archive: %s', errorMessage(error));
    })
    .finally(() => rmSync(temporary, { force: true }));
  return {
    done,
    async cancel() {
      cancelled = true;
      await builder?.stop('SIGKILL', 0);
      await done;
    },
  };
}

/** A topic, a subscription, a publish and a pull: the classes of the common requests. */
async function exercise(host: string): Promise<void> {
  const project = '/v1/projects/class-data-warmup';
  const slow = 60_000;
  await emulatorCall(host, 'PUT', `${project}/topics/warmup`, undefined, slow);
  const subscription = { topic: 'projects/class-data-warmup/topics/warmup' };
  await emulatorCall(host, 'PUT', `${project}/subscriptions/warmup`, subscription, slow);
  const message = { data: Buffer.from('{}').toString('base64'), attributes: { a: 'b' } };
  const publish = { messages: [message] };
  await emulatorCall(host, 'POST', `${project}/topics/warmup:publish`, publish, slow);
  const pulled = await emulatorCall<{ receivedMessages?: { ackId: string }[] }>(
    host,
    'POST',
    `${project}/subscriptions/warmup:pull`,
    { maxMessages: 10 },
    slow,
  );
  const ackIds = (pulled.receivedMessages ?? []).map((m) => m.ackId);
  if (ackIds.length > 0) {
    const acknowledge = { ackIds };
    await emulatorCall(
      host,
      'POST',
      `${project}/subscriptions/warmup:acknowledge`,
      acknowledge,
      slow,
    );
  }
}

/** Deletes half-written archives of daemons that are gone. */
function removeAbandoned(cacheDir: string): void {
  for (const name of readdirSync(cacheDir)) {
    const pid = /\.jsa\.(\d+)\.tmp$/.exec(name)?.[1];
    if (pid && !isProcessAlive(Number(pid))) rmSync(join(cacheDir, name), { force: true });
  }
}

function findNice(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'nice'))) return join(dir, 'nice');
  }
  return undefined;
}

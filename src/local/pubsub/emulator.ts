import {
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';

import { LabError, errorMessage } from '../../errors.js';
import type { Logger } from '../../log.js';
import { Supervisor, isProcessAlive } from '../supervisor.js';
import type { ArchiveBuild } from './class-data.js';
import { buildClassDataArchive, classDataArchive } from './class-data.js';
import { locateEmulator } from './locate.js';
import { assertPortFree, freePort } from './ports.js';
import type { PubsubResources } from './resources.js';
import {
  fingerprint,
  loadResources,
  readResources,
  restoreResources,
  saveResources,
} from './resources.js';
import { emulatorAnswers } from './rest.js';

export { freePort } from './ports.js';

/**
 * Runs Google's Pub/Sub emulator as a supervised JVM on 127.0.0.1, and keeps its topics and
 * subscriptions across restarts (see resources.ts).
 *
 * Start-up is the slow part of the local cloud, so the JVM is started directly (not through
 * gcloud), with the serial collector and a capped heap, and with a class-data archive once one
 * exists (see class-data.ts).
 *
 * The JVM compiles with its quick compiler only (C1). With both tiers, the optimising compiler
 * (C2) spent more CPU than the emulator's own work for the first minutes of a load: under
 * `npm run bench:ingest`, 7 s of its 13.5 s of CPU went to C2, and the emulator cost 199 ms per
 * 1,000 events; with C1 alone, 64 to 72 ms.
 */

export interface EmulatorOptions {
  /** Port on 127.0.0.1; 0 picks a free one. */
  port: number;
  /** `STATE_DIR/local`; the emulator's log, pid file and saved resources go in `pubsub/` below. */
  dataDir: string;
  log: Logger;
  /** Java heap, in MiB; `defaultHeapMb()` unless set here or in CYMBAL_LAB_PUBSUB_HEAP_MB. */
  heapMb?: number;
  /** Projects whose resources are saved and restored, besides those already saved. */
  projectIds?: string[];
  /** How long to wait for the emulator to answer; 60 s unless set. */
  readyTimeoutMs?: number;
  /** How often resources are saved while the emulator runs; 3 s unless set, 0 disables. */
  saveIntervalMs?: number;
  env?: NodeJS.ProcessEnv;
}

export interface RunningEmulator {
  /** `127.0.0.1:PORT`, as in PUBSUB_EMULATOR_HOST. */
  readonly host: string;
  readonly port: number;
  readonly supervisor: Supervisor;
  /** The JVM's heap in MiB: how much message data it can keep. */
  readonly heapMb: number;
  /** The file topics and subscriptions are saved to. */
  readonly resourcesFile: string;
  /** Saves the current topics and subscriptions now (when they changed). */
  saveResources(): Promise<void>;
  /** Saves resources, then stops the JVM. Never throws. */
  stop(): Promise<void>;
}

export const DEFAULT_PUBSUB_PORT = 8791;
/**
 * The emulator keeps every message it was given, acked or not, for as long as it runs: about
 * 3 KB of heap for each of the lab's events on each subscription (611,852 of them filled 1.8 GB
 * under `npm run bench:ingest`). Its heap is therefore sized for long loads: a quarter of the
 * machine's memory, between 512 MiB and 4 GiB. The JVM reserves it at start but takes memory
 * only as messages arrive. Restarting the local cloud frees it (messages not yet acked are not
 * kept across a restart, see resources.ts).
 */
export function defaultHeapMb(totalBytes = totalmem()): number {
  const quarter = Math.floor(totalBytes / 4 / 1024 / 1024);
  return Math.max(512, Math.min(4096, quarter));
}
const DEFAULT_PROJECT = 'cymbal-lab-local';

const running = new Map<string, RunningEmulator>();

/** The emulator this process started at `host`, if any (for status and memory readings). */
export function runningEmulator(host: string): RunningEmulator | undefined {
  return running.get(host);
}

export async function startEmulator(options: EmulatorOptions): Promise<RunningEmulator> {
  const env = options.env ?? process.env;
  const command = locateEmulator(env);
  const dir = join(options.dataDir, 'pubsub');
  mkdirSync(dir, { recursive: true });
  const log = options.log.child('pubsub');
  const pidFile = join(dir, 'emulator.pid');
  await killOrphan(pidFile, log);

  const port = options.port === 0 ? await freePort() : options.port;
  await assertPortFree(port, 'the Pub/Sub emulator', 'pubsubPort');
  const host = `127.0.0.1:${port}`;
  const heapMb = options.heapMb ?? (Number(env.CYMBAL_LAB_PUBSUB_HEAP_MB) || defaultHeapMb());
  const archive = classDataArchive(command, env);
  const logFile = join(dir, 'emulator.log');
  rotateLog(logFile);

  const supervisor = new Supervisor({
    name: 'pubsub-emulator',
    command: command.java,
    args: [
      `-Xmx${heapMb}m`,
      // The whole heap from the start, which takes memory only as it is used: an old generation
      // that grows in steps is a full collection at every step, longer each time (0.3 s at
      // 180 MB). Messages that live through two young collections stay for good.
      `-Xms${heapMb}m`,
      `-Xmn${Math.min(64, Math.floor(heapMb / 4))}m`,
      '-XX:MaxTenuringThreshold=2',
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-XX:+ExitOnOutOfMemoryError',
      // A plain IPv4 socket on 127.0.0.1, rather than an IPv6 one mapped to it.
      '-Djava.net.preferIPv4Stack=true',
      ...(archive?.exists ? [`-XX:SharedArchiveFile=${archive.file}`] : []),
      ...command.programArgs,
      '--host=127.0.0.1',
      `--port=${port}`,
    ],
    cwd: dir,
    logFile,
    restart: { initialDelayMs: 1_000, maxRestarts: 5 },
    log,
  });
  // Named at once, so that a daemon stopped while the JVM starts can still find and end it.
  supervisor.on('spawn', (pid) => writeFileSync(pidFile, `${pid}\n`));
  const started = Date.now();
  try {
    await supervisor.start({
      probe: () => emulatorAnswers(host, 500),
      timeoutMs: options.readyTimeoutMs ?? 60_000,
      intervalMs: 50,
    });
  } catch (error) {
    throw explainStartFailure(error, supervisor);
  }
  log.debug('emulator answering on %s after %d ms', host, Date.now() - started);

  const resourcesFile = join(dir, 'resources.json');
  const saved = loadResources(resourcesFile);
  const projectIds = [
    ...new Set([
      ...(options.projectIds ?? [DEFAULT_PROJECT]),
      ...Object.keys(saved?.projects ?? {}),
    ]),
  ];
  let lastSaved = saved ? fingerprint(saved) : '';
  if (saved) await restore(host, saved, log);

  let saving: Promise<void> | undefined;
  // True from an unexpected exit until the new JVM has its resources back: a save in between
  // would see an empty emulator and overwrite the file that the restore needs.
  let restarting = false;
  const save = async (): Promise<void> => {
    if (supervisor.state !== 'running' || restarting) return;
    try {
      const current = await readResources(host, projectIds);
      const print = fingerprint(current);
      if (print === lastSaved) return;
      saveResources(resourcesFile, current);
      lastSaved = print;
      log.debug('saved Pub/Sub resources to %s', resourcesFile);
    } catch (error) {
      // Keep the last good file: a listing that failed says nothing about what exists.
      log.debug('could not save Pub/Sub resources: %s', errorMessage(error));
    }
  };
  const saveOnce = (): Promise<void> => (saving ??= save().finally(() => (saving = undefined)));
  const intervalMs = options.saveIntervalMs ?? 3_000;
  const timer = intervalMs > 0 ? setInterval(() => void saveOnce(), intervalMs) : undefined;
  timer?.unref();

  // After an unexpected exit the supervisor starts the JVM again; bring the resources back.
  supervisor.on('exit', (exit) => {
    if (exit.expected) return;
    restarting = true;
    if (/OutOfMemoryError/.test(supervisor.logTail(20))) {
      log.error(
        'the Pub/Sub emulator ran out of its %d MB heap: it keeps every message it was given ' +
          'while it runs. It starts again with its topics and subscriptions, but messages not ' +
          'yet acked are lost. Give it more with CYMBAL_LAB_PUBSUB_HEAP_MB, or restart the local ' +
          'cloud (cymbal-lab local stop, then local start) between large loads.',
        heapMb,
      );
    }
  });
  supervisor.on('spawn', () => {
    if (!restarting) return;
    void (async () => {
      const deadline = Date.now() + 60_000;
      while (!(await emulatorAnswers(host, 500))) {
        if (Date.now() > deadline || supervisor.state !== 'running') return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const last = loadResources(resourcesFile);
      if (last) await restore(host, last, log);
      restarting = false;
    })();
  });

  // No archive yet: build one in the background once this emulator has settled.
  let archiveBuild: ArchiveBuild | undefined;
  const archiveTimer =
    archive && !archive.exists
      ? setTimeout(() => (archiveBuild = buildClassDataArchive(command, archive, dir, log)), 3_000)
      : undefined;
  archiveTimer?.unref();

  let stopping: Promise<void> | undefined;
  const emulator: RunningEmulator = {
    host,
    port,
    supervisor,
    heapMb,
    resourcesFile,
    saveResources: saveOnce,
    stop: () =>
      (stopping ??= (async () => {
        clearInterval(timer);
        await saveOnce();
        clearTimeout(archiveTimer);
        await archiveBuild?.cancel();
        await supervisor.stop('SIGTERM', 5_000);
        rmSync(pidFile, { force: true });
        running.delete(host);
      })()),
  };
  running.set(host, emulator);
  return emulator;
}

async function restore(host: string, saved: PubsubResources, log: Logger): Promise<void> {
  const created = await restoreResources(host, saved, log);
  if (created > 0) log.info('re-created %d Pub/Sub resources saved at %s', created, saved.savedAt);
}

function explainStartFailure(error: unknown, supervisor: Supervisor): unknown {
  const tail = supervisor.logTail(40);
  if (/UnsupportedClassVersionError/.test(tail)) {
    return new LabError('The Pub/Sub emulator needs a newer Java than the one installed.', {
      hint: 'Install a Java 17 runtime, such as the Debian package `openjdk-17-jre-headless`.',
      cause: error,
    });
  }
  return error;
}

/** Ends an emulator JVM that a daemon of this data directory started, if one still runs. */
export async function killEmulatorOf(dataDir: string, log: Logger): Promise<void> {
  await killOrphan(join(dataDir, 'pubsub', 'emulator.pid'), log);
}

/**
 * A JVM left behind by a daemon that was killed would hold the port and keep its memory. The pid
 * file names it; it is ended only when its command line shows it is an emulator.
 */
async function killOrphan(pidFile: string, log: Logger): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  rmSync(pidFile, { force: true });
  if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid)) return;
  if (!commandLine(pid).includes('pubsub')) return;
  log.info('stopping a Pub/Sub emulator left running by an earlier daemon (pid %d)', pid);
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return;
  }
  const deadline = Date.now() + 5_000;
  while (isProcessAlive(pid) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** Keeps one previous emulator log, so a long-lived state directory does not grow without end. */
function rotateLog(logFile: string): void {
  try {
    if (statSync(logFile).size > 10 * 1024 * 1024) renameSync(logFile, `${logFile}.1`);
  } catch {
    // No log yet.
  }
}

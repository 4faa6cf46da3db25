import { closeSync, openSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { LabError, errorMessage } from '../errors.js';
import { Logger } from '../log.js';
import { adminRoutes } from './admin.js';
import type { DaemonFailure, DaemonInfo } from './daemon-info.js';
import {
  daemonPaths,
  packageVersion,
  readJson,
  removeFile,
  writeJsonAtomic,
} from './daemon-info.js';
import type { RunningHost } from './host.js';
import type { RunningEmulator } from './pubsub/emulator.js';
import { DEFAULT_PUBSUB_PORT, killEmulatorOf, startEmulator } from './pubsub/emulator.js';
import { isProcessAlive } from './supervisor.js';

/**
 * The local cloud's process: started detached by `cymbal-lab local start` (see lifecycle.ts) as
 * `node dist/src/local/daemon.js --state-dir DIR --port N --pubsub-port N --project P`, each
 * option also readable from the environment (CYMBAL_LAB_STATE_DIR, CYMBAL_LAB_LOCAL_PORT,
 * CYMBAL_LAB_PUBSUB_PORT, CYMBAL_LAB_PROJECT).
 *
 * It starts the Pub/Sub emulator, then every service on the loopback server, and only then
 * writes daemon.json. SIGTERM or SIGINT stops the services in reverse order, then the emulator,
 * and removes daemon.json.
 */

export const DEFAULT_API_PORT = 8790;
export const DEFAULT_PROJECT = 'cymbal-lab-local';

export interface DaemonOptions {
  stateDir: string;
  port: number;
  pubsubPort: number;
  projectId: string;
}

export function parseDaemonOptions(
  argv: string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): DaemonOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      'state-dir': { type: 'string' },
      port: { type: 'string' },
      'pubsub-port': { type: 'string' },
      project: { type: 'string' },
    },
    strict: true,
  });
  return {
    stateDir: resolve(values['state-dir'] ?? env.CYMBAL_LAB_STATE_DIR ?? '.cymbal-lab'),
    port: portOf(values.port ?? env.CYMBAL_LAB_LOCAL_PORT, DEFAULT_API_PORT),
    pubsubPort: portOf(values['pubsub-port'] ?? env.CYMBAL_LAB_PUBSUB_PORT, DEFAULT_PUBSUB_PORT),
    projectId: values.project ?? env.CYMBAL_LAB_PROJECT ?? DEFAULT_PROJECT,
  };
}

function portOf(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new LabError(`"${raw}" is not a port number.`);
  }
  return port;
}

export async function runDaemon(options: DaemonOptions): Promise<void> {
  const paths = daemonPaths(options.stateDir);
  const log = new Logger({ level: 'error', debugFile: paths.log, write: () => undefined });
  const version = packageVersion();
  const startedAt = new Date();
  takeLock(paths.lock);
  removeFile(paths.error);
  log.info('starting local cloud %s (pid %d) in %s', version, process.pid, paths.dir);

  let emulator: RunningEmulator | undefined;
  let host: RunningHost | undefined;
  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string, exitCode: number): Promise<void> =>
    (stopping ??= (async () => {
      log.info('stopping (%s)', reason);
      removeFile(paths.info);
      // A stop that hangs must still end the process; the supervisor has already killed the JVM
      // by then unless it hangs too.
      setTimeout(() => process.exit(exitCode || 2), 45_000).unref();
      try {
        await host?.close();
      } catch (error) {
        log.error('stopping services: %s', errorMessage(error));
      }
      if (emulator) await emulator.stop();
      // Stopped while the JVM was starting: end it through its pid file.
      else await killEmulatorOf(paths.dir, log);
      removeFile(paths.lock);
      log.info('stopped');
      process.exit(exitCode);
    })());
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGHUP', () => undefined);
  process.on('uncaughtException', (error) => {
    log.error('unexpected error: %s', error.stack ?? error.message);
    void shutdown('unexpected error', 2);
  });
  process.on('unhandledRejection', (reason) => {
    log.error('unhandled rejection: %s', reason instanceof Error ? reason.stack : String(reason));
  });

  // The services' modules (DuckDB and friends) load while the JVM starts.
  const loading = Promise.all([import('./host.js'), import('./services.js')]);
  loading.catch(() => undefined);
  try {
    emulator = await startEmulator({
      port: options.pubsubPort,
      dataDir: paths.dir,
      log,
      projectIds: [options.projectId],
    });
    const running = emulator;
    emulator.supervisor.on('failed', () => {
      log.error('the Pub/Sub emulator keeps exiting; see %s', running.supervisor.logFile);
    });
    const opened: { host?: RunningHost } = {};
    const routes = adminRoutes({
      version,
      startedAt,
      endpoint: () => opened.host?.endpoint ?? '',
      pubsubHost: emulator.host,
      projectId: options.projectId,
      emulator: () => ({
        pid: running.supervisor.pid,
        rssBytes: running.supervisor.memoryBytes(),
        state: running.supervisor.state,
        restarts: running.supervisor.restarts,
      }),
      services: () => opened.host?.status(),
    });
    const [{ openHost }, { serviceFactories }] = await loading;
    host = await openHost({
      dataDir: paths.dir,
      port: options.port,
      pubsubHost: emulator.host,
      projectId: options.projectId,
      log,
      factories: serviceFactories,
      routes,
    });
    opened.host = host;
  } catch (error) {
    const failure: DaemonFailure = {
      message: errorMessage(error),
      ...(error instanceof LabError && error.hint ? { hint: error.hint } : {}),
    };
    log.error(
      'could not start: %s',
      error instanceof Error ? (error.stack ?? '') : failure.message,
    );
    writeJsonAtomic(paths.error, failure);
    await shutdown('start failed', 1);
    return;
  }
  if (stopping) return;

  const info: DaemonInfo = {
    pid: process.pid,
    endpoint: host.endpoint,
    pubsubHost: emulator.host,
    projectId: options.projectId,
    startedAt: startedAt.toISOString(),
    version,
  };
  writeJsonAtomic(paths.info, info);
  log.info(
    'ready in %d ms: API %s, Pub/Sub %s',
    Date.now() - startedAt.getTime(),
    info.endpoint,
    info.pubsubHost,
  );
}

/**
 * One daemon per state directory. The lock file names the pid; a lock whose process is gone is
 * taken over.
 */
function takeLock(lockFile: string): void {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readJson<number>(lockFile);
    if (typeof holder === 'number' && holder !== process.pid && isProcessAlive(holder)) {
      throw new LabError(`A local cloud daemon (pid ${holder}) already runs for this directory.`, {
        hint: 'Use it, or stop it first with `cymbal-lab local stop`.',
      });
    }
    removeFile(lockFile);
  }
  throw new LabError(`Could not take the lock ${lockFile}; another daemon is starting.`);
}

const isEntryPoint =
  process.argv[1] && new URL(import.meta.url).pathname === resolve(process.argv[1]);
if (isEntryPoint) {
  let options: DaemonOptions;
  try {
    options = parseDaemonOptions();
  } catch (error) {
    process.stderr.write(`${errorMessage(error)}\n`);
    process.exit(1);
  }
  runDaemon(options).catch((error: unknown) => {
    const paths = daemonPaths(options.stateDir);
    const failure: DaemonFailure = {
      message: errorMessage(error),
      ...(error instanceof LabError && error.hint ? { hint: error.hint } : {}),
    };
    try {
      writeJsonAtomic(paths.error, failure);
    } catch {
      // The state directory may be unwritable; stderr still reaches the log.
    }
    process.stderr.write(`${failure.message}\n`);
    process.exit(1);
  });
}

import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  unwatchFile,
  watchFile,
} from 'node:fs';
import { request } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { localEnvironment } from '../cloud/target.js';
import type { LocalEndpoints } from '../cloud/target.js';
import { LabError } from '../errors.js';
import type { Logger } from '../log.js';
import type { DaemonHealth, LocalCloudStatus } from './admin.js';
import type { DaemonFailure, DaemonInfo } from './daemon-info.js';
import { assertPortFree } from './pubsub/ports.js';
import { daemonPaths, readJson, removeFile } from './daemon-info.js';
import { isProcessAlive, tailOfFile } from './supervisor.js';

/**
 * What the CLI and the steps call to run the local cloud: start it when it is not running (as a
 * detached daemon that outlives the command), stop it, and ask it how it is doing. The daemon is
 * found through `STATE_DIR/local/daemon.json`, which is trusted only when its pid is alive and
 * its endpoint answers with that same pid: a daemon that crashed leaves a file that fools no one.
 */

export const DEFAULT_LOCAL_PORT = 8790;
export const DEFAULT_PUBSUB_PORT = 8791;
export const DEFAULT_LOCAL_PROJECT = 'cymbal-lab-local';

export interface LocalCloudOptions {
  stateDir: string;
  /** Loopback API port; 8790 unless set, 0 picks a free one. */
  port?: number;
  /** Pub/Sub emulator port; 8791 unless set, 0 picks a free one. */
  pubsubPort?: number;
  projectId?: string;
  log: Logger;
  /** How long to wait for a new daemon; 60 s unless set. */
  readyTimeoutMs?: number;
}

const DAEMON_SCRIPT = fileURLToPath(new URL('./daemon.js', import.meta.url));

/** Calls in flight, so that steps running side by side share one start. */
const ensuring = new Map<string, Promise<LocalEndpoints>>();

/** Starts the local cloud unless it already runs, waits until it answers, returns its endpoints. */
export function ensureLocalCloud(options: LocalCloudOptions): Promise<LocalEndpoints> {
  const key = resolve(options.stateDir);
  let pending = ensuring.get(key);
  if (!pending) {
    pending = ensureOnce(options).finally(() => ensuring.delete(key));
    ensuring.set(key, pending);
  }
  return pending;
}

async function ensureOnce(options: LocalCloudOptions): Promise<LocalEndpoints> {
  const { stateDir, log } = options;
  const projectId = options.projectId ?? DEFAULT_LOCAL_PROJECT;
  const running = await runningDaemon(stateDir);
  if (running) {
    if (running.projectId !== projectId) {
      log.warn(
        'The local cloud runs for project %s, not %s; restart it to switch: `cymbal-lab local stop`.',
        running.projectId,
        projectId,
      );
    }
    log.debug('local cloud already running (pid %d) at %s', running.pid, running.endpoint);
    return endpointsOf(running);
  }
  const paths = daemonPaths(stateDir);
  const starting = readJson<number>(paths.lock);
  if (typeof starting === 'number' && isDaemonProcess(starting)) {
    log.info('The local cloud is starting (pid %d); waiting for it.', starting);
    return endpointsOf(await waitForDaemon(stateDir, starting, options.readyTimeoutMs));
  }

  const port = options.port ?? DEFAULT_LOCAL_PORT;
  const pubsubPort = options.pubsubPort ?? DEFAULT_PUBSUB_PORT;
  await assertPortFree(port, 'the local cloud', 'localPort');
  await assertPortFree(pubsubPort, 'the Pub/Sub emulator', 'pubsubPort');

  log.info('Starting the local cloud...');
  const began = Date.now();
  const pid = spawnDaemon(stateDir, port, pubsubPort, projectId);
  const info = await waitForDaemon(stateDir, pid, options.readyTimeoutMs);
  log.info(
    'Local cloud ready in %s s: API %s, Pub/Sub %s',
    ((Date.now() - began) / 1000).toFixed(1),
    info.endpoint,
    info.pubsubHost,
  );
  return endpointsOf(info);
}

/**
 * Stops the daemon (SIGTERM, then SIGKILL after `graceMs`) and removes its files. Returns false
 * when no daemon was running.
 */
export async function stopLocalCloud(stateDir: string, graceMs = 40_000): Promise<boolean> {
  const paths = daemonPaths(stateDir);
  const info = readJson<DaemonInfo>(paths.info);
  const lockPid = readJson<number>(paths.lock);
  const pid = [info?.pid, lockPid].find(
    (candidate): candidate is number => typeof candidate === 'number' && isDaemonProcess(candidate),
  );
  let stopped = false;
  if (pid !== undefined) {
    process.kill(pid, 'SIGTERM');
    if (!(await waitUntil(() => !isProcessAlive(pid), graceMs))) {
      process.kill(pid, 'SIGKILL');
      await waitUntil(() => !isProcessAlive(pid), 5_000);
    }
    stopped = true;
  }
  // A daemon killed outright leaves its JVM behind; end it too.
  const jvm = readJson<number>(join(paths.dir, 'pubsub', 'emulator.pid'));
  if (typeof jvm === 'number' && commandLine(jvm).includes('pubsub')) {
    process.kill(jvm, 'SIGKILL');
    removeFile(join(paths.dir, 'pubsub', 'emulator.pid'));
    stopped = true;
  }
  removeFile(paths.info);
  removeFile(paths.lock);
  return stopped;
}

/** The running daemon's status, or undefined when it is not running. */
export async function localCloudStatus(stateDir: string): Promise<LocalCloudStatus | undefined> {
  const info = await runningDaemon(stateDir);
  if (!info) return undefined;
  const { status, body } = await httpGet(`${info.endpoint}/_cymbal/status`, 30_000);
  if (status !== 200) {
    throw new LabError(`The local cloud answered its status request with HTTP ${status}.`, {
      hint: `See ${daemonPaths(stateDir).log}.`,
    });
  }
  return JSON.parse(body) as LocalCloudStatus;
}

/**
 * The daemon that runs for this state directory and answers, or undefined. A daemon.json whose
 * process is gone, or is no longer a daemon, is removed.
 */
export async function runningDaemon(stateDir: string): Promise<DaemonInfo | undefined> {
  const paths = daemonPaths(stateDir);
  const info = readJson<DaemonInfo>(paths.info);
  if (!info) return undefined;
  if (!isDaemonProcess(info.pid)) {
    removeFile(paths.info);
    return undefined;
  }
  // A busy daemon may be slow to answer; give it a few tries before calling it hung.
  for (let attempt = 0; attempt < 3; attempt += 1) {
    if (await answersAs(info)) return info;
  }
  throw new LabError(`The local cloud (pid ${info.pid}) is running but does not answer.`, {
    hint: `See ${paths.log}, then restart it: \`cymbal-lab local stop\` and \`cymbal-lab local start\`.`,
  });
}

export interface LogOptions {
  stateDir: string;
  follow: boolean;
  /** `emulator` for the Pub/Sub emulator's own output; any other name filters the daemon's log. */
  service?: string;
  write: (text: string) => void;
  /** Ends `follow`. */
  signal?: AbortSignal;
}

/** Prints the daemon's log (or the emulator's), and with `follow` keeps printing what is added. */
export async function localLogs(options: LogOptions): Promise<void> {
  const paths = daemonPaths(options.stateDir);
  const service = options.service;
  const emulatorLog = service === 'emulator' || service === 'pubsub-emulator';
  const file = emulatorLog ? join(paths.dir, 'pubsub', 'emulator.log') : paths.log;
  if (!existsSync(file) && !options.follow) {
    throw new LabError(`There is no log at ${file} yet.`, {
      hint: 'Start the local cloud first: `cymbal-lab local start`.',
    });
  }
  const tagged =
    service && !emulatorLog ? new RegExp(`^\\S+ \\S+ \\[${escape(service)}[\\]:]`) : undefined;
  const print = (text: string): void => {
    if (!tagged) {
      options.write(text);
      return;
    }
    const lines = text.split('\n').filter((line) => tagged.test(line));
    if (lines.length > 0) options.write(`${lines.join('\n')}\n`);
  };
  let offset = 0;
  let partial = '';
  const readMore = (): void => {
    const size = existsSync(file) ? statSync(file).size : 0;
    if (size < offset) offset = 0;
    if (size === offset) return;
    const fd = openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(size - offset);
      readSync(fd, buffer, 0, buffer.length, offset);
      offset = size;
      const text = partial + buffer.toString('utf8');
      const cut = text.lastIndexOf('\n') + 1;
      partial = text.slice(cut);
      if (cut > 0) print(text.slice(0, cut));
    } finally {
      closeSync(fd);
    }
  };
  readMore();
  if (!options.follow) {
    if (partial) print(`${partial}\n`);
    return;
  }
  await new Promise<void>((resolve) => {
    watchFile(file, { interval: 250 }, readMore);
    const end = (): void => {
      unwatchFile(file, readMore);
      resolve();
    };
    if (options.signal?.aborted) end();
    options.signal?.addEventListener('abort', end, { once: true });
  });
}

/** `export NAME=value` lines that point programs and shells at the local cloud. */
export function localEnv(endpoints: LocalEndpoints, projectId: string): string {
  const variables = localEnvironment({
    kind: 'local',
    projectId,
    region: 'us-central1',
    local: endpoints,
  });
  return Object.entries(variables)
    .map(([name, value]) => `export ${name}=${shellQuote(value)}\n`)
    .join('');
}

export function endpointsOf(info: DaemonInfo): LocalEndpoints {
  return { api: info.endpoint, pubsub: info.pubsubHost };
}

function spawnDaemon(
  stateDir: string,
  port: number,
  pubsubPort: number,
  projectId: string,
): number {
  const paths = daemonPaths(stateDir);
  removeFile(paths.error);
  rotate(paths.log);
  const fd = openLog(paths.log);
  try {
    const child = spawn(
      process.execPath,
      [
        DAEMON_SCRIPT,
        '--state-dir',
        resolve(stateDir),
        '--port',
        String(port),
        '--pubsub-port',
        String(pubsubPort),
        '--project',
        projectId,
      ],
      // Its own directory as cwd, so that the daemon does not hold on to the user's.
      { detached: true, stdio: ['ignore', fd, fd], env: process.env, cwd: paths.dir },
    );
    child.unref();
    exits.set(child.pid ?? -1, false);
    child.once('exit', () => exits.set(child.pid ?? -1, true));
    if (child.pid === undefined) throw new LabError('Could not start the local cloud daemon.');
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

/** Daemons this process spawned, and whether each has exited (a zombie still looks alive). */
const exits = new Map<number, boolean>();

async function waitForDaemon(
  stateDir: string,
  pid: number,
  timeoutMs = 60_000,
): Promise<DaemonInfo> {
  const paths = daemonPaths(stateDir);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = readJson<DaemonInfo>(paths.info);
    if (info?.pid === pid && (await answersAs(info))) return info;
    const gone = exits.get(pid) ?? !isProcessAlive(pid);
    const other = readJson<number>(paths.lock);
    if (gone && typeof other === 'number' && other !== pid && isDaemonProcess(other)) {
      // Another command started a daemon at the same moment and ours gave way: wait for that one.
      return waitForDaemon(stateDir, other, Math.max(1_000, deadline - Date.now()));
    }
    if (gone) {
      const failure = readJson<DaemonFailure>(paths.error);
      if (failure) throw new LabError(failure.message, failure.hint ? { hint: failure.hint } : {});
      throw new LabError(
        `The local cloud stopped while starting. Last lines of ${paths.log}:\n${tailOfFile(paths.log, 15)}`,
      );
    }
    if (Date.now() > deadline) {
      throw new LabError(`The local cloud did not answer within ${timeoutMs / 1000} s.`, {
        hint: `See ${paths.log}; stop it with \`cymbal-lab local stop\`.`,
      });
    }
    await delay(50);
  }
}

async function answersAs(info: DaemonInfo): Promise<boolean> {
  try {
    const { status, body } = await httpGet(`${info.endpoint}/_cymbal/health`, 2_000);
    return status === 200 && (JSON.parse(body) as DaemonHealth).pid === info.pid;
  } catch {
    return false;
  }
}

function httpGet(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** True when `pid` is alive and is a local cloud daemon (not a recycled pid). */
function isDaemonProcess(pid: number): boolean {
  if (exits.get(pid) === true) return false;
  return isProcessAlive(pid) && commandLine(pid).includes('daemon.js');
}

function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

function openLog(file: string): number {
  mkdirSync(dirname(file), { recursive: true });
  return openSync(file, 'a');
}

/** Keeps one previous daemon log, so a long-lived state directory does not grow without end. */
function rotate(file: string): void {
  try {
    if (statSync(file).size > 10 * 1024 * 1024) renameSync(file, `${file}.1`);
  } catch {
    // No log yet.
  }
}

function shellQuote(value: string): string {
  return /^[\w./:@-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

async function waitUntil(condition: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await delay(50);
  }
  return true;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

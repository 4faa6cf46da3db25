import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';

import { LabError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { silentLogger } from '../log.js';

/**
 * A child process the local cloud owns: the Pub/Sub emulator's JVM, a Cloud Run revision, a
 * Dataflow job. Its output goes straight to a log file (the child writes to the file itself, so
 * nothing flows through this process), it can be restarted with exponential backoff when it dies
 * on its own, and it is always stopped the same way: a polite signal, then SIGKILL after a grace
 * period.
 *
 *     const app = new Supervisor({ name: 'app', command: 'node', args: ['server.js'],
 *       logFile: '/tmp/app.log', restart: true });
 *     await app.start({ probe: () => isAnswering(port), timeoutMs: 10_000 });
 *     ...
 *     await app.stop();
 */

export interface RestartPolicy {
  /** Delay before the first restart; doubled (by `factor`) for each further one. */
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
  /** A child that stayed up this long counts as healthy: the next delay starts over. */
  resetAfterMs: number;
  /** Give up (state `failed`) after this many restarts in a row. */
  maxRestarts: number;
}

export const DEFAULT_RESTART: RestartPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  factor: 2,
  resetAfterMs: 30_000,
  maxRestarts: 10,
};

export interface SupervisorOptions {
  /** A short name for logs and errors, such as `pubsub-emulator`. */
  name: string;
  command: string;
  args?: string[];
  /** Added to this process's environment (a value of `undefined` removes a variable). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** stdout and stderr are appended here; the directory is created when missing. */
  logFile: string;
  /** Restart when the child exits without being asked to. Off unless set. */
  restart?: boolean | Partial<RestartPolicy>;
  log?: Logger;
}

export interface Readiness {
  /** Polled until it returns true; a throw counts as "not yet". */
  probe: () => boolean | Promise<boolean>;
  /** 30 s unless set. */
  timeoutMs?: number;
  /** Pause between probes; 100 ms unless set. */
  intervalMs?: number;
}

export type SupervisorState =
  'idle' | 'starting' | 'running' | 'backoff' | 'stopping' | 'stopped' | 'exited' | 'failed';

export interface ExitInfo {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when `stop()` asked for it. */
  expected: boolean;
  /** How long the child ran, in milliseconds. */
  uptimeMs: number;
}

export interface SupervisorEvents {
  spawn: [pid: number];
  exit: [info: ExitInfo];
  restart: [attempt: number, delayMs: number];
  failed: [info: ExitInfo];
}

export class Supervisor extends EventEmitter<SupervisorEvents> {
  readonly name: string;
  readonly logFile: string;
  private readonly options: SupervisorOptions;
  private readonly policy: RestartPolicy | undefined;
  private readonly log: Logger;
  private child: ChildProcess | undefined;
  private exited: Promise<ExitInfo> | undefined;
  private startedAt = 0;
  private currentState: SupervisorState = 'idle';
  private restartsInARow = 0;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(options: SupervisorOptions) {
    super();
    this.options = options;
    this.name = options.name;
    this.logFile = options.logFile;
    this.log = options.log ?? silentLogger;
    const restart = options.restart;
    if (restart) this.policy = { ...DEFAULT_RESTART, ...(restart === true ? {} : restart) };
  }

  get state(): SupervisorState {
    return this.currentState;
  }

  /** The running child's pid; undefined while none runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Restarts since the child last stayed up for `resetAfterMs`. */
  get restarts(): number {
    return this.restartsInARow;
  }

  /**
   * Spawns the child and, when `ready` is given, resolves only once its probe answers true.
   * Rejects with a LabError that quotes the end of the log when the child exits first or the
   * probe times out; the child is stopped in both cases.
   */
  async start(ready?: Readiness): Promise<void> {
    if (this.child) throw new Error(`${this.name} is already running (pid ${this.child.pid}).`);
    this.currentState = 'starting';
    const exited = this.spawnChild();
    if (ready) {
      try {
        await this.waitReady(ready, exited);
      } catch (error) {
        await this.stop('SIGKILL', 0);
        this.currentState = 'failed';
        throw error;
      }
    }
    this.currentState = 'running';
  }

  /**
   * Sends `signal`, waits up to `graceMs` for the child to exit, then sends SIGKILL. Cancels a
   * pending restart. The whole process group is signalled, so a launcher's children go too.
   */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
    clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    const exited = this.exited;
    if (!child || !exited) {
      if (this.currentState !== 'idle') this.currentState = 'stopped';
      return;
    }
    this.currentState = 'stopping';
    this.signal(child, signal);
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<false>(
      (resolve) => (timer = setTimeout(resolve, graceMs, false)),
    );
    const inTime = await Promise.race([exited.then(() => true), graceOver]);
    clearTimeout(timer);
    if (!inTime) {
      if (signal !== 'SIGKILL') {
        this.log.warn('%s did not exit %d ms after %s; killing it', this.name, graceMs, signal);
      }
      this.signal(child, 'SIGKILL');
      await exited;
    }
    this.currentState = 'stopped';
  }

  /** Resident memory of the child (VmRSS), in bytes; undefined when none runs. */
  memoryBytes(): number | undefined {
    const pid = this.pid;
    return pid === undefined ? undefined : processMemoryBytes(pid);
  }

  /** The last `lines` lines of the log file, for error messages. */
  logTail(lines = 20): string {
    return tailOfFile(this.logFile, lines);
  }

  private spawnChild(): Promise<ExitInfo> {
    mkdirSync(dirname(this.logFile), { recursive: true });
    const fd = openSync(this.logFile, 'a');
    const { command, args = [] } = this.options;
    writeSync(fd, `--- ${new Date().toISOString()} ${this.name}: ${command} ${args.join(' ')}\n`);
    let child: ChildProcess;
    try {
      child = spawn(command, args, {
        cwd: this.options.cwd,
        env: { ...process.env, ...this.options.env },
        stdio: ['ignore', fd, fd],
        // Its own process group, so that stop() reaches the children of a launcher script.
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.startedAt = Date.now();
    const exited = new Promise<ExitInfo>((resolve) => {
      let spawnError: Error | undefined;
      child.once('error', (error) => (spawnError = error));
      child.once('spawn', () => {
        this.log.debug('%s started, pid %d', this.name, child.pid);
        this.emit('spawn', child.pid ?? 0);
      });
      child.once('close', (code, signal) => {
        if (spawnError) this.appendLog(`${this.name} could not start: ${spawnError.message}`);
        resolve(this.onExit(child, code, signal));
      });
    });
    this.exited = exited;
    return exited;
  }

  private onExit(
    child: ChildProcess,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): ExitInfo {
    const expected = this.currentState === 'stopping';
    const info: ExitInfo = {
      pid: child.pid ?? 0,
      code,
      signal,
      expected,
      uptimeMs: Date.now() - this.startedAt,
    };
    this.child = undefined;
    this.exited = undefined;
    this.emit('exit', info);
    if (expected || this.currentState === 'starting') return info;
    this.log.warn('%s exited unexpectedly (code %s, signal %s)', this.name, code, signal);
    this.scheduleRestart(info);
    return info;
  }

  private scheduleRestart(info: ExitInfo): void {
    const policy = this.policy;
    if (!policy) {
      this.currentState = 'exited';
      return;
    }
    if (info.uptimeMs >= policy.resetAfterMs) this.restartsInARow = 0;
    if (this.restartsInARow >= policy.maxRestarts) {
      this.currentState = 'failed';
      this.log.error('%s keeps exiting; gave up after %d restarts', this.name, this.restartsInARow);
      this.emit('failed', info);
      return;
    }
    const delayMs = backoffDelay(policy, this.restartsInARow);
    this.restartsInARow += 1;
    this.currentState = 'backoff';
    this.emit('restart', this.restartsInARow, delayMs);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.currentState !== 'backoff') return;
      this.currentState = 'running';
      void this.spawnChild();
    }, delayMs);
    this.restartTimer.unref();
  }

  private async waitReady(ready: Readiness, exited: Promise<ExitInfo>): Promise<void> {
    const timeoutMs = ready.timeoutMs ?? 30_000;
    const deadline = Date.now() + timeoutMs;
    let exit: ExitInfo | undefined;
    void exited.then((info) => (exit = info));
    for (;;) {
      if (exit) {
        const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
        throw this.startError(`${this.name} exited (${how}) before it was ready.`);
      }
      const ok = await Promise.resolve()
        .then(ready.probe)
        .catch(() => false);
      if (ok) return;
      if (Date.now() >= deadline) {
        throw this.startError(`${this.name} was not ready after ${timeoutMs / 1000} s.`);
      }
      await delay(ready.intervalMs ?? 100);
    }
  }

  private startError(message: string): LabError {
    const tail = this.logTail();
    return new LabError(tail ? `${message}\nLast lines of ${this.logFile}:\n${tail}` : message, {
      hint: `See the whole log in ${this.logFile}.`,
    });
  }

  private signal(child: ChildProcess, signal: NodeJS.Signals): void {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // The group may be gone already; try the child itself before giving up.
      try {
        child.kill(signal);
      } catch (error) {
        this.log.debug('could not signal %s: %s', this.name, errorMessage(error));
      }
    }
  }

  private appendLog(line: string): void {
    try {
      const fd = openSync(this.logFile, 'a');
      writeSync(fd, `${line}\n`);
      closeSync(fd);
    } catch {
      // Losing a log line must not hide the exit itself.
    }
  }
}

/** The delay before restart number `attempt + 1` (attempt counts from 0). */
export function backoffDelay(policy: RestartPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** attempt);
}

/** Resident memory (VmRSS from /proc/PID/status) of any process, in bytes. */
export function processMemoryBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match?.[1] ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** True when a process with this pid exists (and may be signalled by us). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The last `lines` lines of a text file; empty when it can't be read. */
export function tailOfFile(path: string, lines: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    // Only the end of the file matters; a long-running child's log may be large.
    const size = fstatSync(fd).size;
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    return buffer.toString('utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

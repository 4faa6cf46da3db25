import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

import { LabError, errorMessage } from '../errors.js';

/**
 * The state file: what each step did, what it recorded, and the settings. Every write goes to
 * a temporary file that is then renamed over the old one, so a crash or Ctrl-C never leaves a
 * half-written file. Writes are synchronous so that a signal handler can record an
 * interruption before the process exits.
 */

export const STATE_VERSION = 1;

export type StepStatus = 'pending' | 'running' | 'done' | 'failed' | 'interrupted' | 'drifted';

export interface StepRecord {
  status: StepStatus;
  startedAt?: string;
  finishedAt?: string;
  outputs: Record<string, string>;
  lastError?: string;
  lastVerifiedAt?: string;
  lastVerifyOk?: boolean;
  /** The target the step ran against, as `local:PROJECT` or `gcp:PROJECT`. */
  target?: string;
}

export interface StateFile {
  version: number;
  config: Record<string, unknown>;
  steps: Record<string, StepRecord>;
  /** Where guided mode stopped, per part. */
  guided?: { part?: number };
}

export class StateStore {
  readonly dir: string;
  readonly file: string;
  private data: StateFile;

  private constructor(dir: string, data: StateFile) {
    this.dir = dir;
    this.file = join(dir, 'state.json');
    this.data = data;
  }

  /**
   * Opens the state in `dir`, or an empty one when there is none. A file that can't be read
   * is never replaced: the error names it and the way out.
   */
  static open(dir: string, options: { reset?: boolean } = {}): StateStore {
    const file = join(dir, 'state.json');
    if (options.reset && existsSync(file)) {
      const backup = `${file}.bak-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      copyFileSync(file, backup);
      rmSync(file);
    }
    if (!existsSync(file)) return new StateStore(dir, emptyState());
    return new StateStore(dir, readState(file));
  }

  get config(): Record<string, unknown> {
    return this.data.config;
  }

  get guided(): { part?: number } {
    return this.data.guided ?? {};
  }

  /**
   * A step's record. With `target`, a record written against another target or project reads
   * as pending: what was done on the local cloud is not done on Google Cloud.
   */
  step(id: string, target?: string): StepRecord {
    const record = this.data.steps[id];
    if (!record || (target && record.target && record.target !== target)) {
      return { status: 'pending', outputs: {} };
    }
    return record;
  }

  /** True when the step's record was written against another target or project. */
  heldByOtherTarget(id: string, target: string): boolean {
    const recorded = this.data.steps[id]?.target;
    return recorded !== undefined && recorded !== target;
  }

  /** Changes one step's record and saves at once. */
  updateStep(id: string, change: Partial<StepRecord>): StepRecord {
    const next = { ...this.step(id), ...change };
    this.data.steps[id] = next;
    this.save();
    return next;
  }

  resetStep(id: string): void {
    delete this.data.steps[id];
    this.save();
  }

  setConfig(key: string, value: unknown): void {
    this.data.config[key] = value;
    this.save();
  }

  setGuided(guided: { part?: number }): void {
    this.data.guided = guided;
    this.save();
  }

  save(): void {
    mkdirSync(this.dir, { recursive: true });
    const temporary = `${this.file}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify(this.data, null, 2)}\n`);
    renameSync(temporary, this.file);
  }
}

function emptyState(): StateFile {
  return { version: STATE_VERSION, config: {}, steps: {} };
}

const VALID_STATUSES = new Set<StepStatus>([
  'pending',
  'running',
  'done',
  'failed',
  'interrupted',
  'drifted',
]);

function readState(file: string): StateFile {
  const wayOut =
    'It was left as it is. Repair it by hand, or run again with --reset-state to start over ' +
    '(the old file is kept as a state.json.bak-* backup).';
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new LabError(`The state file ${file} cannot be read: ${errorMessage(error)}.`, {
      hint: wayOut,
    });
  }
  const data = parsed as Partial<StateFile> | null;
  if (typeof data !== 'object' || data === null || typeof data.version !== 'number') {
    throw new LabError(
      `The state file ${file} has no version; it is not a cymbal-lab state file.`,
      {
        hint: wayOut,
      },
    );
  }
  if (data.version > STATE_VERSION) {
    throw new LabError(
      `The state file ${file} was written by a newer cymbal-lab (state version ${data.version}; ` +
        `this one reads version ${STATE_VERSION}).`,
      { hint: `Upgrade cymbal-lab, or ${wayOut.charAt(0).toLowerCase()}${wayOut.slice(1)}` },
    );
  }
  const steps = data.steps ?? {};
  for (const [id, record] of Object.entries(steps)) {
    if (!record || !VALID_STATUSES.has(record.status) || typeof record.outputs !== 'object') {
      throw new LabError(`The state file ${file} has an invalid record for step ${id}.`, {
        hint: wayOut,
      });
    }
  }
  return {
    version: STATE_VERSION,
    config: data.config ?? {},
    steps,
    ...(data.guided ? { guided: data.guided } : {}),
  };
}

export interface LockInfo {
  pid: number;
  command: string;
  startedAt: string;
}

/**
 * One run at a time per state directory. The lock file names the run that holds it; a lock
 * whose process is gone is taken over.
 */
export class StateLock {
  private constructor(private readonly file: string) {}

  static acquire(dir: string, command: string): StateLock {
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'lock');
    const info: LockInfo = { pid: process.pid, command, startedAt: new Date().toISOString() };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(file, 'wx');
        writeFileSync(fd, JSON.stringify(info));
        closeSync(fd);
        return new StateLock(file);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const holder = readLock(file);
        if (holder && holder.pid !== process.pid && isAlive(holder.pid)) {
          throw new LabError(
            `Another cymbal-lab run is using ${dir}: \`${holder.command}\` (pid ${holder.pid}, ` +
              `started ${holder.startedAt}).`,
            { hint: `Wait for it to finish, or stop it with \`kill ${holder.pid}\`.` },
          );
        }
        rmSync(file, { force: true });
      }
    }
    throw new LabError(`Could not take the lock ${file}.`, { hint: 'Try again.' });
  }

  release(): void {
    const holder = readLock(this.file);
    if (holder?.pid === process.pid) rmSync(this.file, { force: true });
  }
}

function readLock(file: string): LockInfo | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LockInfo;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The files through which the CLI and the daemon find each other, all under `STATE_DIR/local/`:
 * `daemon.json` appears only once every service answers and goes away when the daemon stops;
 * `daemon.lock` holds the pid of a daemon from its first moment, so a second one does not start
 * beside it; `daemon-error.json` tells the CLI why a daemon could not start.
 */

export interface DaemonInfo {
  pid: number;
  /** Base URL of the loopback server. */
  endpoint: string;
  /** `host:port` of the Pub/Sub emulator. */
  pubsubHost: string;
  projectId: string;
  startedAt: string;
  version: string;
}

export interface DaemonFailure {
  message: string;
  hint?: string;
}

export interface DaemonPaths {
  dir: string;
  info: string;
  lock: string;
  error: string;
  log: string;
}

export function daemonPaths(stateDir: string): DaemonPaths {
  const dir = join(stateDir, 'local');
  return {
    dir,
    info: join(dir, 'daemon.json'),
    lock: join(dir, 'daemon.lock'),
    error: join(dir, 'daemon-error.json'),
    log: join(dir, 'daemon.log'),
  };
}

export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** Writes through a temporary file and a rename, so a reader never sees half a file. */
export function writeJsonAtomic(file: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(temporary, file);
}

export function removeFile(file: string): void {
  rmSync(file, { force: true });
}

/** The version in package.json, read relative to this module (in src/ or dist/src/). */
export function packageVersion(): string {
  for (const up of ['../../package.json', '../../../package.json']) {
    const pkg = readJson<{ name?: string; version?: string }>(
      new URL(up, import.meta.url).pathname,
    );
    if (pkg?.name === 'cymbal-lab' && pkg.version) return pkg.version;
  }
  return '0.0.0';
}

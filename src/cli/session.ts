import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Clients } from '../cloud/clients.js';
import { createClients } from '../cloud/clients.js';
import type { LocalEndpoints, Target } from '../cloud/target.js';
import type { LabConfig } from '../config.js';
import { parseConfigValue, resolveConfig } from '../config.js';
import { LabError } from '../errors.js';
import type { LogLevel } from '../log.js';
import { Logger } from '../log.js';
import type { EngineReporter } from '../steps/engine.js';
import { Engine } from '../steps/engine.js';
import { LAB_STEPS } from '../steps/registry.js';
import { StateLock, StateStore } from '../steps/state.js';
import type { Progress, StepOptions } from '../steps/types.js';

/** The options every command accepts. */
export interface GlobalFlags {
  target?: string;
  project?: string;
  region?: string;
  stateDir: string;
  yes: boolean;
  quiet: boolean;
  debug: boolean;
  json: boolean;
  resetState: boolean;
}

/** The package root, where assets/ and sample-data/ live. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export interface ProgressFactory {
  (label: string, total: number): Progress;
}

/**
 * One command's view of the lab: the settings (stored ones overridden by flags), the state
 * file, the logger, and the clients for the target. Commands build an engine from it.
 */
export class Session {
  readonly flags: GlobalFlags;
  readonly stateDir: string;
  readonly store: StateStore;
  readonly config: LabConfig;
  readonly log: Logger;
  private lock: StateLock | undefined;
  /** The running local cloud's endpoints, once `prepareTarget` has started or found it. */
  private localEndpoints: LocalEndpoints | undefined;
  private clientsBuilt: Clients | undefined;

  constructor(flags: GlobalFlags, log?: Logger) {
    this.flags = flags;
    this.stateDir = resolve(flags.stateDir);
    const level: LogLevel = flags.debug ? 'debug' : flags.quiet ? 'warn' : 'info';
    this.log = log ?? new Logger({ level, debugFile: join(this.stateDir, 'debug.log') });
    this.store = StateStore.open(this.stateDir, { reset: flags.resetState });
    const stored = { ...this.store.config };
    for (const key of ['target', 'project', 'region'] as const) {
      const value = flags[key];
      if (value !== undefined) stored[key] = parseConfigValue(key, value);
    }
    this.config = resolveConfig(stored);
    if (this.config.target === 'gcp' && !stored.project) {
      throw new LabError('The gcp target needs a project.', {
        hint: 'Pass --project PROJECT_ID, or run `cymbal-lab config set project PROJECT_ID`.',
      });
    }
  }

  get target(): Target {
    const { config } = this;
    if (config.target === 'gcp') {
      return { kind: 'gcp', projectId: config.project, region: config.region };
    }
    return {
      kind: 'local',
      projectId: config.project,
      region: config.region,
      local: this.localEndpoints ?? {
        api: `http://127.0.0.1:${config.localPort}`,
        pubsub: `127.0.0.1:${config.pubsubPort}`,
      },
    };
  }

  /** `local:PROJECT` or `gcp:PROJECT`: state recorded for another target reads as pending. */
  get targetKey(): string {
    return `${this.config.target}:${this.config.project}`;
  }

  get clients(): Clients {
    this.clientsBuilt ??= createClients(this.target);
    return this.clientsBuilt;
  }

  /** Takes the state directory's lock for this command; released by `close`. */
  acquire(command: string): void {
    this.lock ??= StateLock.acquire(this.stateDir, command);
  }

  /**
   * Makes the target usable: on local, starts the local cloud unless it is running; on gcp,
   * checks that Application Default Credentials exist.
   */
  async prepareTarget(): Promise<void> {
    if (this.config.target === 'local') {
      const { ensureLocalCloud } = await import('../local/lifecycle.js');
      this.localEndpoints = await ensureLocalCloud({
        stateDir: this.stateDir,
        port: this.config.localPort,
        pubsubPort: this.config.pubsubPort,
        projectId: this.config.project,
        log: this.log,
      });
      return;
    }
    const { checkCredentials } = await import('../cloud/credentials.js');
    await checkCredentials(this.config.project);
  }

  engine(
    reporter: EngineReporter,
    options: StepOptions,
    progress: ProgressFactory,
    print: (line: string) => void,
  ): Engine {
    return new Engine({
      steps: LAB_STEPS,
      store: this.store,
      reporter,
      targetKey: this.targetKey,
      prepare: () => this.prepareTarget(),
      onInterrupt: () => this.lock?.release(),
      context: (step, outputs, signal) => ({
        config: this.config,
        target: this.target,
        clients: this.clients,
        log: this.log.child(`step ${step.part}.${step.number}`),
        options,
        outputs,
        assetsRoot: PACKAGE_ROOT,
        stateDir: this.stateDir,
        signal,
        progress,
        print,
      }),
    });
  }

  async close(): Promise<void> {
    this.lock?.release();
    this.lock = undefined;
    await this.clientsBuilt?.close();
    this.clientsBuilt = undefined;
  }
}

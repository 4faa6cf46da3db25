import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { delimiter, join } from 'node:path';

import type { Logger } from '../../log.js';
import type { ImageRecord } from '../artifactregistry/registry.js';
import { Supervisor } from '../supervisor.js';

/**
 * One running revision of a Cloud Run service: its image as a supervised child process that
 * listens on the service's port on 127.0.0.1. A Node image runs its start script, as `npm start`
 * would (or the container's `command` and `args`); a Docker image runs with `docker run` on the
 * host's network. The child is restarted with backoff when it dies, as Cloud Run replaces a crashed
 * instance.
 */

export interface ContainerSpec {
  image: string;
  command?: string[];
  args?: string[];
  env: Record<string, string>;
}

export interface InstanceOptions {
  service: string;
  revision: string;
  port: number;
  image: ImageRecord;
  container: ContainerSpec;
  logFile: string;
  log: Logger;
  /** How long the app may take to answer HTTP after it was started. */
  startTimeoutMs?: number;
}

export class Instance {
  readonly supervisor: Supervisor;

  constructor(readonly options: InstanceOptions) {
    const { command, args } = commandLine(options);
    this.supervisor = new Supervisor({
      name: `${options.service} (${options.revision})`,
      command,
      args,
      cwd: options.image.folder ?? process.cwd(),
      env: {
        ...options.container.env,
        PATH: `${join(options.image.folder ?? '', 'node_modules', '.bin')}${delimiter}${
          options.container.env.PATH ?? process.env.PATH ?? ''
        }`,
      },
      logFile: options.logFile,
      restart: { initialDelayMs: 500, maxDelayMs: 10_000, maxRestarts: 8, resetAfterMs: 20_000 },
      log: options.log,
    });
  }

  get port(): number {
    return this.options.port;
  }

  /** Starts the child; resolves once it answers HTTP on its port. */
  async start(): Promise<void> {
    await this.supervisor.start({
      probe: () => answersHttp(this.options.port),
      timeoutMs: this.options.startTimeoutMs ?? 60_000,
      intervalMs: 100,
    });
  }

  /** SIGTERM, then SIGKILL after Cloud Run's grace period of 10 seconds. */
  async stop(): Promise<void> {
    await this.supervisor.stop('SIGTERM', 10_000);
  }
}

function commandLine(options: InstanceOptions): { command: string; args: string[] } {
  const { image, container } = options;
  if (image.kind === 'docker') {
    const env = Object.entries(container.env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    const entrypoint = container.command?.length
      ? ['--entrypoint', container.command[0] ?? '']
      : [];
    return {
      command: 'docker',
      args: [
        'run',
        '--rm',
        '--network',
        'host',
        ...env,
        ...entrypoint,
        image.dockerId ?? image.digest,
        ...(container.command?.slice(1) ?? []),
        ...(container.args ?? []),
      ],
    };
  }
  if (container.command?.length) {
    return {
      command: container.command[0] ?? '',
      args: [...container.command.slice(1), ...(container.args ?? [])],
    };
  }
  return startScript(image.folder ?? '', container.args ?? []);
}

/**
 * What `npm start` would run, run directly: the package's start script in a shell with its
 * `node_modules/.bin` on the PATH, or `node server.js` without one, as npm does. Leaving npm out
 * saves its start-up time on every (re)start, and the app receives signals itself.
 */
function startScript(folder: string, args: string[]): { command: string; args: string[] } {
  let script = 'node server.js';
  try {
    const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as {
      scripts?: Record<string, string>;
    };
    script = manifest.scripts?.start ?? script;
  } catch {
    // No readable package.json: npm would fall back to server.js too.
  }
  // `exec` makes the app the shell's successor, so SIGTERM reaches it directly.
  const quoted = args.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return { command: 'sh', args: ['-c', `exec ${script}${quoted ? ` ${quoted}` : ''}`] };
}

/** True when something answers an HTTP request on 127.0.0.1:port, whatever its status. */
export function answersHttp(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/', method: 'GET', timeout: timeoutMs },
      (res) => {
        res.resume();
        resolve(true);
      },
    );
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

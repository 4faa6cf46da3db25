import type { Command } from 'commander';

import type { LocalEndpoints } from '../cloud/target.js';
import type { Logger } from '../log.js';
import type { LocalCloudStatus } from '../local/admin.js';

/**
 * `cymbal-lab local ...`: start, stop and inspect the local cloud. The lifecycle module is loaded
 * only when one of these commands runs, so the rest of the CLI does not pay for it.
 */

export interface LocalSettings {
  stateDir: string;
  projectId: string;
  port: number;
  pubsubPort: number;
  /** Print machine-readable JSON instead of tables. */
  json: boolean;
  log: Logger;
}

export function addLocalCommands(program: Command, settings: () => Promise<LocalSettings>): void {
  const local = program
    .command('local')
    .description(
      'run the local cloud: the official Pub/Sub emulator and local BigQuery, Storage, Build, Run, Dataflow and Video Intelligence on 127.0.0.1',
    );

  local
    .command('start')
    .description('start the local cloud in the background (nothing happens if it runs already)')
    .action(async () => {
      const s = await settings();
      const { ensureLocalCloud } = await import('../local/lifecycle.js');
      const endpoints = await ensureLocalCloud({
        stateDir: s.stateDir,
        port: s.port,
        pubsubPort: s.pubsubPort,
        projectId: s.projectId,
        log: s.log,
      });
      if (s.json) {
        writeOut(`${JSON.stringify({ running: true, ...endpoints }, null, 2)}\n`);
        return;
      }
      s.log.info('REST APIs: %s', endpoints.api);
      s.log.info('Pub/Sub:   %s', endpoints.pubsub);
      s.log.info('Point your own shell at it with: eval "$(cymbal-lab local env)"');
    });

  local
    .command('stop')
    .description('stop the local cloud; its data stays in the state directory')
    .action(async () => {
      const s = await settings();
      const { stopLocalCloud } = await import('../local/lifecycle.js');
      const stopped = await stopLocalCloud(s.stateDir);
      s.log.info(stopped ? 'Stopped the local cloud.' : 'The local cloud was not running.');
    });

  local
    .command('status')
    .description('each local service with its endpoint, resources and memory')
    .option('--json', 'print the status as JSON')
    .action(async (flags: { json?: boolean }) => {
      const s = await settings();
      const { localCloudStatus } = await import('../local/lifecycle.js');
      const status = await localCloudStatus(s.stateDir);
      if (flags.json || s.json) {
        writeOut(
          `${JSON.stringify(status ? { running: true, ...status } : { running: false }, null, 2)}\n`,
        );
        return;
      }
      if (!status) {
        writeOut('The local cloud is not running. Start it with `cymbal-lab local start`.\n');
        return;
      }
      writeOut(renderStatus(status));
    });

  local
    .command('logs')
    .description("print the local cloud's log")
    .option('-f, --follow', 'keep printing new lines until interrupted')
    .option(
      '--service <name>',
      'only lines of one service (such as bigquery), or `emulator` for the Pub/Sub emulator',
    )
    .action(async (flags: { follow?: boolean; service?: string }) => {
      const s = await settings();
      const { localLogs } = await import('../local/lifecycle.js');
      const stop = new AbortController();
      const onInterrupt = (): void => stop.abort();
      process.once('SIGINT', onInterrupt);
      try {
        await localLogs({
          stateDir: s.stateDir,
          follow: flags.follow ?? false,
          ...(flags.service ? { service: flags.service } : {}),
          write: writeOut,
          signal: stop.signal,
        });
      } finally {
        process.off('SIGINT', onInterrupt);
      }
    });

  local
    .command('env')
    .description(
      'shell lines that point programs at the local cloud: eval "$(cymbal-lab local env)"',
    )
    .action(async () => {
      const s = await settings();
      const { localEnv, runningDaemon, endpointsOf } = await import('../local/lifecycle.js');
      const running = await runningDaemon(s.stateDir);
      let endpoints: LocalEndpoints;
      if (running) endpoints = endpointsOf(running);
      else {
        s.log.warn('The local cloud is not running; start it with `cymbal-lab local start`.');
        endpoints = { api: `http://127.0.0.1:${s.port}`, pubsub: `127.0.0.1:${s.pubsubPort}` };
      }
      writeOut(localEnv(endpoints, running?.projectId ?? s.projectId));
    });
}

function writeOut(text: string): void {
  process.stdout.write(text);
}

/** The status as a few readable tables. */
export function renderStatus(status: LocalCloudStatus): string {
  const { daemon, emulator, services } = status;
  // The emulator's JVM is reported by the pubsub service too; count it once.
  const otherChildren = services
    .filter((s) => s.name !== 'pubsub')
    .reduce((sum, s) => sum + (s.childMemoryBytes ?? 0), 0);
  const jvm = `${megabytes(emulator.rssBytes)} (${emulator.state}${emulator.restarts ? `, ${emulator.restarts} restarts` : ''})`;
  const lines = [
    `Local cloud  running · pid ${daemon.pid} · up ${since(daemon.startedAt)} · project ${daemon.projectId} · v${daemon.version}`,
    `Endpoints    REST ${daemon.endpoint} · Pub/Sub ${daemon.pubsubHost}`,
    `Memory       daemon ${megabytes(daemon.rssBytes)} · Pub/Sub emulator JVM ${jvm} · other children ${megabytes(otherChildren)}`,
    '',
    ...table(
      ['SERVICE', 'STATE', 'ENDPOINT', 'DETAIL'],
      services.map((s) => [s.name, s.state, s.endpoint, s.detail ?? '']),
    ),
  ];
  const resources = services.flatMap((s) =>
    s.resources.map((r) => [s.name, r.kind, r.name, r.detail ?? '']),
  );
  lines.push('');
  if (resources.length === 0) lines.push('No resources yet.');
  else lines.push(...table(['SERVICE', 'KIND', 'NAME', 'DETAIL'], resources));
  return `${lines.join('\n')}\n`;
}

function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const format = (row: string[]): string =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [format(header), ...rows.map(format)];
}

function megabytes(bytes: number | undefined): string {
  return bytes === undefined ? '-' : `${Math.round(bytes / (1024 * 1024))} MB`;
}

function since(iso: string): string {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
}

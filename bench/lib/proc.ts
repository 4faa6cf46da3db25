import { readdirSync, readFileSync } from 'node:fs';

/**
 * What Linux says about a process, for benchmarks: CPU time, current and peak resident memory,
 * and its children. Everything is read from /proc; a process that has gone reads as undefined.
 */

export interface ProcessSample {
  pid: number;
  /** User plus system CPU time so far, in milliseconds. */
  cpuMs: number;
  rssBytes: number;
  /** The kernel's high-water mark of the resident set (VmHWM). */
  peakRssBytes: number;
}

const TICKS_PER_SECOND = 100;

export function sampleProcess(pid: number): ProcessSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return {
      pid,
      cpuMs: (ticks * 1000) / TICKS_PER_SECOND,
      rssBytes: kilobytes(status, 'VmRSS') * 1024,
      peakRssBytes: kilobytes(status, 'VmHWM') * 1024,
    };
  } catch {
    return undefined;
  }
}

function kilobytes(status: string, key: string): number {
  const match = new RegExp(`^${key}:\\s*(\\d+)`, 'm').exec(status);
  return match ? Number(match[1]) : 0;
}

/** Processes whose parent is `pid`, with their command lines. */
export function childrenOf(pid: number): { pid: number; command: string }[] {
  const found: { pid: number; command: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent !== pid) continue;
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      found.push({ pid: Number(entry), command });
    } catch {
      // The process ended while the list was read.
    }
  }
  return found;
}

/** The machine's load average over the last minute. */
export function loadAverage(): number {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return Number.NaN;
  }
}

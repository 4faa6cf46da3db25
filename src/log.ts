import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { format } from 'node:util';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  /** Lowest level written to the terminal. */
  level?: LogLevel;
  /** Every line, debug included, is appended here when set. */
  debugFile?: string;
  /** A tag written before each line, such as `bigquery`. */
  tag?: string;
  /** Where terminal lines go; stderr by default so that stdout stays clean for --json. */
  write?: (line: string) => void;
}

/**
 * The one logger. Terminal output respects the level; the debug file, when set, receives
 * everything with a timestamp so that a failure can be investigated after the fact.
 */
export class Logger {
  readonly level: LogLevel;
  private readonly debugFile: string | undefined;
  private readonly tag: string | undefined;
  private readonly write: (line: string) => void;

  constructor(options: LoggerOptions = {}) {
    this.level = options.level ?? 'info';
    this.debugFile = options.debugFile;
    this.tag = options.tag;
    this.write = options.write ?? ((line) => process.stderr.write(`${line}\n`));
    if (this.debugFile) mkdirSync(dirname(this.debugFile), { recursive: true });
  }

  child(tag: string): Logger {
    return new Logger({
      level: this.level,
      tag: this.tag ? `${this.tag}:${tag}` : tag,
      write: this.write,
      ...(this.debugFile ? { debugFile: this.debugFile } : {}),
    });
  }

  debug(message: string, ...args: unknown[]): void {
    this.log('debug', message, args);
  }

  info(message: string, ...args: unknown[]): void {
    this.log('info', message, args);
  }

  warn(message: string, ...args: unknown[]): void {
    this.log('warn', message, args);
  }

  error(message: string, ...args: unknown[]): void {
    this.log('error', message, args);
  }

  private log(level: LogLevel, message: string, args: unknown[]): void {
    const text = args.length > 0 ? format(message, ...args) : message;
    const tagged = this.tag ? `[${this.tag}] ${text}` : text;
    if (this.debugFile) {
      try {
        appendFileSync(this.debugFile, `${new Date().toISOString()} ${level} ${tagged}\n`);
      } catch {
        // The debug log is a convenience; losing a line must never stop the work.
      }
    }
    if (rank[level] >= rank[this.level]) this.write(tagged);
  }
}

/** A logger that prints nothing, for tests and library use. */
export const silentLogger = new Logger({ level: 'error', write: () => undefined });

import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { spawn } from 'node:child_process';

import { BIN } from './run-cli.js';

// Terminal escape sequences, which the screen text leaves out.
// eslint-disable-next-line no-control-regex
const ESCAPES = /\u001b\[[0-9;?]*[A-Za-z]|\u001b[()][A-Z0-9]|\r/g;

export const keys = { enter: '\r', down: '\u001b[B', up: '\u001b[A' };

/**
 * The real command line in a pseudo-terminal, made by util-linux's `script`, so that prompts
 * render and read keys exactly as they do for a person.
 */
export class Terminal {
  private readonly child: ChildProcessWithoutNullStreams;
  private screen = '';
  private consumed = 0;
  readonly exited: Promise<number | null>;

  constructor(cwd: string, args: string[]) {
    const command = [process.execPath, BIN, ...args].map((a) => `'${a}'`).join(' ');
    this.child = spawn('script', ['-qfec', command, '/dev/null'], {
      cwd,
      env: { ...process.env, CI: '', TERM: 'xterm', COLUMNS: '120', LINES: '40' },
    });
    this.child.stdout.on('data', (chunk: Buffer) => {
      this.screen += chunk.toString('utf8').replace(ESCAPES, '');
    });
    this.exited = new Promise((resolve) => this.child.once('exit', resolve));
  }

  /** Waits for text that appears after what earlier waits consumed. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rest = this.screen.slice(this.consumed);
      const match = pattern.exec(rest);
      if (match) {
        this.consumed += match.index + match[0].length;
        return rest.slice(0, match.index + match[0].length);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `Timed out waiting for ${String(pattern)}; the screen ends with:\n${rest.slice(-1500)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 30));
    }
  }

  press(...sequence: string[]): void {
    this.child.stdin.write(sequence.join(''));
  }

  get text(): string {
    return this.screen;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

import { LabError } from '../../errors.js';

/** A port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Throws a LabError naming the setting to change when `port` on 127.0.0.1 is taken. */
export async function assertPortFree(
  port: number,
  what: string,
  settingKey: string,
): Promise<void> {
  if (port === 0) return;
  const server = createServer();
  const free = await new Promise<boolean>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      error.code === 'EADDRINUSE' ? resolve(false) : reject(error),
    );
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  if (!free) {
    throw new LabError(`Port ${port} on 127.0.0.1, needed by ${what}, is already in use.`, {
      hint: `Stop what holds it, or pick another port: \`cymbal-lab config set ${settingKey} PORT\`.`,
    });
  }
}

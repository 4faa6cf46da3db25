import { request } from 'node:http';

/**
 * A tiny client for the emulator's REST surface (it answers JSON over HTTP/1.1 on the same port
 * as gRPC). The daemon uses it for its own bookkeeping (readiness, status, snapshots) so that it
 * needs no gRPC stack of its own.
 */

export class EmulatorRestError extends Error {
  constructor(
    readonly httpStatus: number,
    message: string,
  ) {
    super(message);
    this.name = 'EmulatorRestError';
  }
}

export async function emulatorCall<T = Record<string, unknown>>(
  host: string,
  method: 'GET' | 'PUT' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
  timeoutMs = 5_000,
): Promise<T> {
  const { hostname, port } = new URL(`http://${host}`);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise<T>((resolve, reject) => {
    const req = request(
      {
        host: hostname,
        port: Number(port),
        method,
        path,
        agent: false,
        timeout: timeoutMs,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
          : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status >= 400) {
            reject(
              new EmulatorRestError(status, `${method} ${path}: ${status} ${errorText(text)}`),
            );
            return;
          }
          try {
            resolve((text.trim().startsWith('{') ? JSON.parse(text) : {}) as T);
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** True when the emulator answers its root path. */
export async function emulatorAnswers(host: string, timeoutMs = 1_000): Promise<boolean> {
  try {
    await emulatorCall(host, 'GET', '/', undefined, timeoutMs);
    return true;
  } catch {
    return false;
  }
}

/** Every item of a paged list call, such as `topics` of `/v1/projects/P/topics`. */
export async function listAll<T>(host: string, path: string, field: string): Promise<T[]> {
  const items: T[] = [];
  let pageToken: string | undefined;
  do {
    const joiner = path.includes('?') ? '&' : '?';
    const token = pageToken ? `&pageToken=${encodeURIComponent(pageToken)}` : '';
    const query = `${joiner}pageSize=1000${token}`;
    const page = await emulatorCall<Record<string, unknown>>(host, 'GET', `${path}${query}`);
    items.push(...((page[field] as T[] | undefined) ?? []));
    pageToken = (page.nextPageToken as string | undefined) || undefined;
  } while (pageToken);
  return items;
}

function errorText(text: string): string {
  try {
    const parsed = JSON.parse(text) as { error?: { message?: string } };
    return parsed.error?.message ?? text;
  } catch {
    return text.slice(0, 200);
  }
}

export interface RestMessage {
  data: Buffer | string;
  attributes?: Record<string, string>;
  orderingKey?: string;
}

/**
 * Publishes through the emulator's REST API and returns the message ids. For in-process
 * publishers of the local cloud (such as Storage notifications) this avoids loading the gRPC
 * client, about 35 MB of the daemon's memory.
 */
export async function publishViaRest(
  host: string,
  topic: string,
  messages: RestMessage[],
): Promise<string[]> {
  const path = `/v1/${topic.split('/').map(encodeURIComponent).join('/')}:publish`;
  const body = {
    messages: messages.map((m) => ({
      data: Buffer.from(m.data).toString('base64'),
      ...(m.attributes ? { attributes: m.attributes } : {}),
      ...(m.orderingKey ? { orderingKey: m.orderingKey } : {}),
    })),
  };
  const reply = await emulatorCall<{ messageIds?: string[] }>(host, 'POST', path, body);
  return reply.messageIds ?? [];
}

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { LabError } from '../errors.js';
import type { Logger } from '../log.js';
import type { LocalRequest, Reply, Route } from './http.js';
import { ApiError, DEFAULT_MAX_BODY_BYTES } from './http.js';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/**
 * The one HTTP server of the local cloud. It binds 127.0.0.1 only, refuses requests whose Host
 * header names anything but a loopback name (a guard against DNS rebinding), reads bodies up to
 * each route's limit, and turns every failure into Google's error JSON.
 */
export class LocalHttpServer {
  private readonly routes: Route[] = [];
  private server: Server | undefined;

  constructor(private readonly log: Logger) {}

  add(routes: Route[]): void {
    this.routes.push(...routes);
  }

  /** Listens on 127.0.0.1:port (0 picks a free port) and returns the bound port. */
  async listen(port: number): Promise<number> {
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE') {
          reject(
            new LabError(`Port ${port} on 127.0.0.1 is already in use.`, {
              hint: 'Stop what holds it, or pick another port: `cymbal-lab config set localPort PORT`.',
            }),
          );
        } else reject(error);
      });
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const host = hostName(req.headers.host);
      if (!LOOPBACK_HOSTS.has(host)) {
        throw new ApiError(
          'PERMISSION_DENIED',
          `The local cloud only answers loopback hosts, not "${host}".`,
        );
      }
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const path = decodeURIComponent(url.pathname);
      const method = (req.method ?? 'GET').toUpperCase();
      const { route, params } = this.match(method, path);
      const body = route.stream
        ? Buffer.alloc(0)
        : await readBody(req, route.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
      const request: LocalRequest = {
        method,
        path,
        params,
        query: url.searchParams,
        headers: req.headers,
        body,
        json: <T>() => parseJson<T>(body),
        ...(route.stream ? { stream: req } : {}),
      };
      await send(res, await route.handler(request));
    } catch (error) {
      const apiError =
        error instanceof ApiError ? error : new ApiError('INTERNAL', describe(error));
      if (!(error instanceof ApiError))
        this.log.error('unexpected error: %s', describe(error, true));
      else this.log.debug('%s %s -> %s %s', req.method, req.url, apiError.status, apiError.message);
      if (res.headersSent) {
        res.destroy();
        return;
      }
      req.resume();
      await send(res, { status: apiError.httpStatus, json: apiError.toJSON() });
    }
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.path.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      return { route, params: { ...(m.groups ?? {}) } };
    }
    if (pathMatched)
      throw new ApiError('UNIMPLEMENTED', `Method ${method} is not supported on ${path}.`);
    throw new ApiError('NOT_FOUND', `The local cloud has no API at ${method} ${path}.`);
  }
}

function hostName(header: string | undefined): string {
  if (!header) return '127.0.0.1';
  if (header.startsWith('[')) return header.slice(0, header.indexOf(']') + 1);
  return header.split(':')[0] ?? '';
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function tooLarge(limit: number): ApiError {
  return new ApiError('INVALID_ARGUMENT', `Request body is larger than ${limit} bytes.`, {
    reason: 'requestTooLarge',
  });
}

function parseJson<T>(body: Buffer): T {
  if (body.length === 0) return {} as T;
  try {
    return JSON.parse(body.toString('utf8')) as T;
  } catch (error) {
    throw new ApiError('INVALID_ARGUMENT', `Invalid JSON payload received. ${describe(error)}`, {
      reason: 'parseError',
    });
  }
}

async function send(res: ServerResponse, reply: Reply): Promise<void> {
  const headers: Record<string, string> = { ...(reply.headers ?? {}) };
  if (reply.json !== undefined) {
    const text = JSON.stringify(reply.json);
    headers['content-type'] ??= 'application/json; charset=UTF-8';
    res.writeHead(reply.status ?? 200, headers);
    res.end(text);
    return;
  }
  res.writeHead(reply.status ?? 200, headers);
  if (reply.body instanceof Readable) {
    await pipeline(reply.body, res);
    return;
  }
  res.end(reply.body ?? '');
}

function describe(error: unknown, withStack = false): string {
  if (error instanceof Error) return withStack && error.stack ? error.stack : error.message;
  return String(error);
}

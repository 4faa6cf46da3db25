import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';

import type { GrpcStatusName } from '../errors.js';
import { GrpcCode } from '../errors.js';

/**
 * The HTTP layer every local API shares. Engines throw `ApiError`; the server turns it into
 * Google's error JSON with the matching HTTP status, so each official client raises the error it
 * would raise against Google.
 */

const httpStatusOf: Record<GrpcStatusName, number> = {
  OK: 200,
  CANCELLED: 499,
  UNKNOWN: 500,
  INVALID_ARGUMENT: 400,
  DEADLINE_EXCEEDED: 504,
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  PERMISSION_DENIED: 403,
  RESOURCE_EXHAUSTED: 429,
  FAILED_PRECONDITION: 400,
  ABORTED: 409,
  OUT_OF_RANGE: 400,
  UNIMPLEMENTED: 501,
  INTERNAL: 500,
  UNAVAILABLE: 503,
  UNAUTHENTICATED: 401,
};

/** The `reason` the JSON APIs (BigQuery, Storage) put in `error.errors[]`. */
const reasonOf: Partial<Record<GrpcStatusName, string>> = {
  INVALID_ARGUMENT: 'invalid',
  NOT_FOUND: 'notFound',
  ALREADY_EXISTS: 'duplicate',
  PERMISSION_DENIED: 'accessDenied',
  RESOURCE_EXHAUSTED: 'rateLimitExceeded',
  FAILED_PRECONDITION: 'failedPrecondition',
  UNIMPLEMENTED: 'notImplemented',
  INTERNAL: 'internalError',
  UNAVAILABLE: 'backendError',
};

export class ApiError extends Error {
  readonly status: GrpcStatusName;
  readonly reason: string | undefined;

  constructor(status: GrpcStatusName, message: string, options: { reason?: string } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.reason = options.reason;
  }

  get httpStatus(): number {
    return httpStatusOf[this.status];
  }

  get grpcCode(): number {
    return GrpcCode[this.status];
  }

  /** The body Google's APIs answer with, understood by both REST and gax-fallback clients. */
  toJSON(): { error: Record<string, unknown> } {
    return {
      error: {
        code: this.httpStatus,
        message: this.message,
        status: this.status,
        errors: [
          {
            message: this.message,
            domain: 'global',
            reason: this.reason ?? reasonOf[this.status] ?? 'unknown',
          },
        ],
      },
    };
  }
}

export const notFound = (message: string): ApiError => new ApiError('NOT_FOUND', message);
export const alreadyExists = (message: string): ApiError => new ApiError('ALREADY_EXISTS', message);
export const invalidArgument = (message: string): ApiError =>
  new ApiError('INVALID_ARGUMENT', message);

export interface LocalRequest {
  method: string;
  /** The decoded path, without the query string. */
  path: string;
  /** Named groups of the route's pattern, URL-decoded. */
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** The whole body, read up to the route's size limit. */
  body: Buffer;
  /** The body parsed as JSON; an empty body is `{}`; malformed JSON is INVALID_ARGUMENT. */
  json<T = Record<string, unknown>>(): T;
  /** The unread body, set only on routes with `stream: true` (then `body` is empty). */
  stream?: Readable;
}

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  /** Sent as JSON when set. */
  json?: unknown;
  /** Sent as it is (a stream is piped). */
  body?: Buffer | string | Readable;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Matched against the whole decoded path; use named groups for parameters. */
  path: RegExp;
  handler: (request: LocalRequest) => Promise<Reply>;
  /** Largest body accepted, in bytes; 10 MiB unless set. */
  maxBodyBytes?: number;
  /**
   * Leave the body unread and hand it to the handler as `request.stream`, for uploads too large
   * to hold in memory; `maxBodyBytes` does not apply.
   */
  stream?: boolean;
}

export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

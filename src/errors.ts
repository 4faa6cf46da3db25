/**
 * One error type for everything a user can act on. Only the entry point turns errors into exit
 * codes: a `LabError` exits 1 with its message and hint; anything else is unexpected and exits 2
 * with the stack written to the debug log.
 */
export class LabError extends Error {
  readonly hint: string | undefined;
  readonly exitCode = 1;

  constructor(message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'LabError';
    this.hint = options.hint;
  }
}

/** A step operation that a later version of the tool will provide. */
export class NotAvailableYet extends LabError {
  constructor(what: string) {
    super(`${what} is not available yet in this version of cymbal-lab.`, {
      hint: 'Run `cymbal-lab status` to see which steps can run today.',
    });
    this.name = 'NotAvailableYet';
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** gRPC status codes as the Google clients report them, by name. */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

export type GrpcStatusName = keyof typeof GrpcCode;

/** True when a Google client error (gRPC or REST) says the resource already exists. */
export function isAlreadyExists(error: unknown): boolean {
  return hasCode(error, GrpcCode.ALREADY_EXISTS, 409);
}

/** True when a Google client error (gRPC or REST) says the resource does not exist. */
export function isNotFound(error: unknown): boolean {
  return hasCode(error, GrpcCode.NOT_FOUND, 404);
}

function hasCode(error: unknown, grpc: number, http: number): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { code?: unknown; status?: unknown };
  return e.code === grpc || e.code === http || e.status === http;
}

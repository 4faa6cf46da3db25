import type { GrpcStatusName } from '../../errors.js';
import { ApiError } from '../http.js';

/**
 * Cloud Storage answers some failures with HTTP statuses that have no gRPC twin of the same
 * number (412 for a failed precondition, 416 for an unsatisfiable range). This error keeps the
 * gRPC status name for the JSON body and overrides the HTTP status the server sends.
 */
export class StorageError extends ApiError {
  private readonly http: number;

  constructor(status: GrpcStatusName, http: number, message: string, reason?: string) {
    super(status, message, reason ? { reason } : {});
    this.http = http;
  }

  override get httpStatus(): number {
    return this.http;
  }
}

export const noSuchBucket = (bucket: string): ApiError =>
  new ApiError('NOT_FOUND', `The specified bucket does not exist: ${bucket}.`);

export const noSuchObject = (bucket: string, name: string): ApiError =>
  new ApiError('NOT_FOUND', `No such object: ${bucket}/${name}`);

export const preconditionFailed = (detail: string): ApiError =>
  new StorageError(
    'FAILED_PRECONDITION',
    412,
    `At least one of the pre-conditions you specified did not hold: ${detail}.`,
    'conditionNotMet',
  );

export const rangeNotSatisfiable = (size: number): ApiError =>
  new StorageError(
    'OUT_OF_RANGE',
    416,
    `The requested range cannot be satisfied: the object has ${size} bytes.`,
    'requestedRangeNotSatisfiable',
  );

export const badRequest = (message: string, reason = 'invalid'): ApiError =>
  new StorageError('INVALID_ARGUMENT', 400, message, reason);

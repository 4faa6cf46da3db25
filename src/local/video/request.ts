import { ApiError, invalidArgument } from '../http.js';

/**
 * `AnnotateVideoRequest` as the REST clients send it, checked the way Google checks it before
 * answering with an operation: exactly one input, at least one feature, and (here) only the
 * feature this local API implements.
 */

/** `google.cloud.videointelligence.v1.Feature`, by number as `enum-encoding=int` sends it. */
const FEATURES: Record<number, string> = {
  0: 'FEATURE_UNSPECIFIED',
  1: 'LABEL_DETECTION',
  2: 'SHOT_CHANGE_DETECTION',
  3: 'EXPLICIT_CONTENT_DETECTION',
  4: 'FACE_DETECTION',
  6: 'SPEECH_TRANSCRIPTION',
  7: 'TEXT_DETECTION',
  9: 'OBJECT_TRACKING',
  12: 'LOGO_RECOGNITION',
  14: 'PERSON_DETECTION',
};

export const OBJECT_TRACKING = 'OBJECT_TRACKING';

export type VideoInput = { kind: 'uri'; uri: string } | { kind: 'content'; content: Buffer };

export interface AnnotateRequest {
  input: VideoInput;
  /** Where to also write the result as JSON, a `gs://` URI, when the caller asked. */
  outputUri: string | undefined;
  locationId: string | undefined;
}

interface RequestJson {
  inputUri?: unknown;
  inputContent?: unknown;
  features?: unknown;
  outputUri?: unknown;
  locationId?: unknown;
}

export function parseAnnotateRequest(body: RequestJson): AnnotateRequest {
  const features = Array.isArray(body.features) ? body.features.map(featureName) : [];
  if (features.length === 0 || features.includes('FEATURE_UNSPECIFIED')) {
    throw invalidArgument('Request must specify at least one feature, such as OBJECT_TRACKING.');
  }
  const others = features.filter((f) => f !== OBJECT_TRACKING);
  if (others.length > 0) {
    throw new ApiError(
      'UNIMPLEMENTED',
      `The local Video Intelligence API implements only OBJECT_TRACKING; ${others.join(', ')} ` +
        'is not available. Ask for features: [OBJECT_TRACKING], or use the gcp target.',
    );
  }
  const uri = typeof body.inputUri === 'string' && body.inputUri !== '' ? body.inputUri : undefined;
  const content =
    typeof body.inputContent === 'string' && body.inputContent !== ''
      ? body.inputContent
      : undefined;
  if (uri && content) {
    throw invalidArgument('Set either inputUri or inputContent, not both.');
  }
  if (!uri && !content) {
    throw invalidArgument('Set inputUri (gs://BUCKET/OBJECT) or inputContent (base64 bytes).');
  }
  let input: VideoInput;
  if (uri) {
    if (!/^gs:\/\/[^/]+\/.+/.test(uri)) {
      throw invalidArgument(`inputUri "${uri}" must be a Cloud Storage URI: gs://BUCKET/OBJECT.`);
    }
    input = { kind: 'uri', uri };
  } else {
    const bytes = Buffer.from(content ?? '', 'base64');
    if (bytes.length === 0) throw invalidArgument('inputContent is not base64-encoded bytes.');
    input = { kind: 'content', content: bytes };
  }
  const outputUri =
    typeof body.outputUri === 'string' && body.outputUri ? body.outputUri : undefined;
  if (outputUri && !/^gs:\/\/[^/]+\/.+/.test(outputUri)) {
    throw invalidArgument(
      `outputUri "${outputUri}" must be a Cloud Storage URI: gs://BUCKET/OBJECT.`,
    );
  }
  const locationId =
    typeof body.locationId === 'string' && body.locationId ? body.locationId : undefined;
  return { input, outputUri, locationId };
}

function featureName(value: unknown): string {
  if (typeof value === 'number') return FEATURES[value] ?? `feature ${value}`;
  if (typeof value === 'string') return value;
  return 'FEATURE_UNSPECIFIED';
}

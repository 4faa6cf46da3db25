import type { PubSub, Topic } from '@google-cloud/pubsub';
import type { VideoIntelligenceServiceClient, protos } from '@google-cloud/video-intelligence';
import type { CallOptions } from 'google-gax';

import type { MessagePublisher, VideoAnnotator } from './pipeline.js';
import type { ObjectAnnotationLike } from './rows.js';

/**
 * The pipeline's two outside calls, made with the official clients: Video Intelligence
 * `annotateVideo` (a long-running operation) and Pub/Sub publishing.
 */

/**
 * How the annotate operation is polled. The client's default starts at 100 ms and grows by 1.3
 * up to a minute between polls, which adds seconds to a ten-second clip; polling at most every
 * half second costs the local service nothing and Google only a few more GETs.
 */
const POLLING: NonNullable<CallOptions['longrunning']> = {
  initialRetryDelayMillis: 100,
  retryDelayMultiplier: 1.3,
  maxRetryDelayMillis: 500,
  totalTimeoutMillis: 30 * 60_000,
};

/**
 * The feature by name, as Google's samples write it; the client turns names into the enum (9 on
 * the wire). Its typings only admit the enum, which would make this module load the library.
 */
const OBJECT_TRACKING = [
  'OBJECT_TRACKING',
] as unknown as protos.google.cloud.videointelligence.v1.Feature[];

export function videoIntelligenceAnnotator(client: VideoIntelligenceServiceClient): VideoAnnotator {
  return {
    async annotate(uri: string): Promise<ObjectAnnotationLike[]> {
      const [operation] = await client.annotateVideo(
        { inputUri: uri, features: OBJECT_TRACKING },
        { longrunning: POLLING },
      );
      const [response] = await operation.promise();
      const result = response.annotationResults?.[0];
      // A video the API could not read fails inside a successful operation: its result has an
      // `error` status, as on Google when one of several videos fails.
      if (result?.error?.code) {
        throw Object.assign(new Error(result.error.message || `annotating ${uri} failed`), {
          code: result.error.code,
        });
      }
      return result?.objectAnnotations ?? [];
    },
  };
}

export function pubsubPublisher(pubsub: PubSub): MessagePublisher {
  const topics = new Map<string, Topic>();
  const topicOf = (name: string): Topic => {
    let topic = topics.get(name);
    if (!topic) {
      topic = pubsub.topic(name, { batching: { maxMessages: 100, maxMilliseconds: 5 } });
      topics.set(name, topic);
    }
    return topic;
  };
  return {
    async publish(name, data, attributes) {
      await topicOf(name).publishMessage({ data, attributes });
    },
    async exists(name) {
      const [exists] = await topicOf(name).exists();
      return exists;
    },
  };
}

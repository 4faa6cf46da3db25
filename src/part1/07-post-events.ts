import { pendingOperations } from '../steps/pending.js';
import type { StepDefinition } from '../steps/types.js';

export const postEvents: StepDefinition = {
  part: 1,
  number: 7,
  title: 'Post e-commerce events to the ingest app',
  explain:
    'The lab posts three events, a product view, an add to cart and a purchase, as a website ' +
    'would. This step posts those three and then a stream of generated shopping sessions, and ' +
    'counts what the app accepted and what it rejected.',
  commands: () => [
    'curl -X POST "$SERVICE_URL/json" -H "Content-Type: application/json" ' +
      '-d @sample-data/events/view_item.json',
    'curl -X POST "$SERVICE_URL/json" -H "Content-Type: application/json" ' +
      '-d @sample-data/events/add_to_cart.json',
    'curl -X POST "$SERVICE_URL/json" -H "Content-Type: application/json" ' +
      '-d @sample-data/events/purchase.json',
  ],
  needs: ['serviceUrl', 'jobId'],
  outputs: ['eventsAccepted', 'eventsRejected'],
  ...pendingOperations('Part 1 step 7'),
};

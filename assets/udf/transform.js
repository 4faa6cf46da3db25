/**
 * A JavaScript UDF for the "Pub/Sub Subscription to BigQuery" Dataflow template.
 *
 * Upload it to Cloud Storage and launch the template with
 *   javascriptTextTransformGcsPath=gs://YOUR_BUCKET/udf/transform.js
 *   javascriptTextTransformFunctionName=process
 *
 * The template calls process() once per Pub/Sub message with the message's data as a JSON
 * string and writes the JSON string it returns to BigQuery, one object per row:
 *   - return JSON.stringify(event)  -> the (changed) event becomes a row;
 *   - return null                   -> the message is dropped, silently;
 *   - throw an Error                -> the message goes to the dead-letter table
 *                                      (OUTPUT_TABLE_error_records) with the error's text.
 *
 * Every key of the returned object must be a column of the output table: BigQuery rejects a row
 * with an unknown field, and the template sends it to the dead-letter table. To add a field,
 * add the column to the table first.
 *
 * Keep it plain JavaScript: no require, no import, no network or files. Locally each call may
 * run for one second; on Google the UDF runs inside the Dataflow workers.
 *
 * This one:
 *   1. drops test traffic (events whose user_id starts with "test-");
 *   2. normalises event names: "Add To Cart", "addToCart" and "add-to-cart" all become
 *      "add_to_cart", the GA4 spelling the lab's queries use;
 *   3. stamps event_datetime with the processing time when the sender left it out;
 *   4. rejects events without the REQUIRED fields, so they are kept in the dead-letter table
 *      with a clear reason instead of failing inside BigQuery.
 */
function process(inJson) {
  var event = JSON.parse(inJson);

  if (typeof event.user_id === 'string' && event.user_id.indexOf('test-') === 0) {
    return null;
  }

  if (typeof event.event !== 'string' || event.event.trim() === '') {
    throw new Error('the event has no "event" name');
  }
  if (event.user_id === undefined || event.user_id === null || event.user_id === '') {
    throw new Error('the event "' + event.event + '" has no "user_id"');
  }

  event.event = normaliseName(event.event);

  if (!event.event_datetime) {
    // BigQuery reads "YYYY-MM-DD HH:MM:SS" as a UTC TIMESTAMP.
    event.event_datetime = new Date().toISOString().slice(0, 19).replace('T', ' ');
  }

  return JSON.stringify(event);
}

/** "Add To Cart", "addToCart", "add-to-cart" -> "add_to_cart". */
function normaliseName(name) {
  return name
    .trim()
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/[\s-]+/g, '_')
    .toLowerCase();
}

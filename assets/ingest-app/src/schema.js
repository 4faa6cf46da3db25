/**
 * The columns of `retail_dataset.ecommerce_events`, in BigQuery's own schema notation. An event
 * is checked against this before it is published, so a row BigQuery would reject never reaches
 * the topic. Keep it in step with the table the lab creates.
 */

const string = (name) => ({ name, type: 'STRING' });
const integer = (name) => ({ name, type: 'INTEGER' });
const float = (name) => ({ name, type: 'FLOAT' });

export const eventSchema = [
  { name: 'event_datetime', type: 'TIMESTAMP' },
  { name: 'event', type: 'STRING', mode: 'REQUIRED' },
  { name: 'user_id', type: 'STRING', mode: 'REQUIRED' },
  string('client_id'),
  string('page'),
  string('page_previous'),
  {
    name: 'ecommerce',
    type: 'RECORD',
    fields: [
      {
        name: 'items',
        type: 'RECORD',
        mode: 'REPEATED',
        fields: [
          integer('index'),
          integer('item_id'),
          integer('quantity'),
          float('price'),
          string('item_name'),
          string('item_list_name'),
          string('item_list_id'),
          string('item_variant'),
          string('item_brand'),
          string('item_category'),
          string('item_category_2'),
          string('item_category_3'),
          string('item_category_4'),
        ],
      },
      {
        name: 'purchase',
        type: 'RECORD',
        fields: [
          string('coupon'),
          string('affiliation'),
          string('currency'),
          string('transaction_id'),
          float('tax'),
          float('shipping'),
          float('value'),
          {
            name: 'items',
            type: 'RECORD',
            mode: 'REPEATED',
            fields: [
              string('item_coupon'),
              string('item_variant'),
              string('item_category'),
              string('item_name'),
              string('item_brand'),
              integer('quantity'),
              integer('item_id'),
              float('item_price'),
            ],
          },
        ],
      },
    ],
  },
];

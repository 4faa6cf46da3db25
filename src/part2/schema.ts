import type { TableField } from '@google-cloud/bigquery';

/** The video analytics template's table: one row per file, entity and time window. */
export const annotationSchema: TableField[] = [
  { name: 'file_name', type: 'STRING', mode: 'REQUIRED' },
  { name: 'entity', type: 'STRING', mode: 'REQUIRED' },
  {
    name: 'frame_data',
    type: 'RECORD',
    mode: 'REPEATED',
    fields: [
      { name: 'processing_timestamp', type: 'STRING' },
      { name: 'timeOffset', type: 'STRING' },
      { name: 'confidence', type: 'FLOAT' },
      { name: 'left', type: 'FLOAT' },
      { name: 'top', type: 'FLOAT' },
      { name: 'right', type: 'FLOAT' },
      { name: 'bottom', type: 'FLOAT' },
    ],
  },
];

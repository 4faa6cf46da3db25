import { describe, expect, it } from '@jest/globals';

import { COCO_ENTITIES, entityFor, isCocoId, sameFamily } from '../../src/vision/entities.js';

describe('COCO entity map', () => {
  it('covers the 80 COCO categories once each, with Knowledge Graph ids', () => {
    expect(COCO_ENTITIES).toHaveLength(80);
    expect(new Set(COCO_ENTITIES.map((e) => e.cocoId)).size).toBe(80);
    expect(new Set(COCO_ENTITIES.map((e) => e.entityId)).size).toBe(80);
    for (const entity of COCO_ENTITIES) {
      expect(entity.entityId).toMatch(/^\/m\/0[0-9a-z_]+$/);
      expect(entity.description).toBe(entity.description.toLowerCase());
      expect(entity.cocoId).toBeGreaterThanOrEqual(1);
      expect(entity.cocoId).toBeLessThanOrEqual(90);
    }
  });

  it('uses the ids Video Intelligence reports for the lab objects', () => {
    expect(entityFor(1)).toMatchObject({ entityId: '/m/01g317', description: 'person' });
    expect(entityFor(2)).toMatchObject({ entityId: '/m/0199g', description: 'bicycle' });
    expect(entityFor(3)).toMatchObject({ entityId: '/m/0k4j', description: 'car' });
    expect(entityFor(17)).toMatchObject({ entityId: '/m/01yrx', description: 'cat' });
    expect(entityFor(18)).toMatchObject({ entityId: '/m/0bt9lr', description: 'dog' });
  });

  it('rejects ids COCO never used and groups look-alikes', () => {
    expect(isCocoId(12)).toBe(false);
    expect(() => entityFor(12)).toThrow(RangeError);
    expect(sameFamily(19, 21)).toBe(true); // horse, cow
    expect(sameFamily(3, 8)).toBe(true); // car, truck
    expect(sameFamily(1, 2)).toBe(false); // person, bicycle
    expect(sameFamily(12, 26)).toBe(false); // two unused ids
  });
});

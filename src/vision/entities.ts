/**
 * The 80 COCO categories the detector knows, keyed by their original COCO id, with the
 * Knowledge Graph entity and the English description Video Intelligence reports for that kind of
 * object. The ids are the machine ids Google uses across its vision products (Open Images uses
 * the same ones). Entries marked "uncertain" are the closest entity we know of; Google may report
 * a more specific or a more general one for the same object.
 */

export interface CocoEntity {
  /** COCO category id, 1..90 with gaps. */
  cocoId: number;
  /** The COCO name, as COCO-SSD labels it. */
  cocoName: string;
  /** Knowledge Graph machine id, such as `/m/01yrx`. */
  entityId: string;
  /** Lower-case English description, as the API returns it. */
  description: string;
  /**
   * Objects the detector confuses with each other (a horse taken for a cow) share a family, so
   * the tracker may keep one identity across such a relabelling.
   */
  family: string;
}

type Row = [
  cocoId: number,
  cocoName: string,
  entityId: string,
  description: string,
  family?: string,
];

const rows: Row[] = [
  [1, 'person', '/m/01g317', 'person'],
  [2, 'bicycle', '/m/0199g', 'bicycle', 'cycle'],
  [3, 'car', '/m/0k4j', 'car', 'vehicle'],
  [4, 'motorcycle', '/m/04_sv', 'motorcycle', 'cycle'],
  [5, 'airplane', '/m/0cmf2', 'airplane'],
  [6, 'bus', '/m/01bjv', 'bus', 'vehicle'],
  [7, 'train', '/m/07jdr', 'train', 'vehicle'],
  [8, 'truck', '/m/07r04', 'truck', 'vehicle'],
  [9, 'boat', '/m/019jd', 'boat'],
  [10, 'traffic light', '/m/015qff', 'traffic light'],
  [11, 'fire hydrant', '/m/01pns0', 'fire hydrant'],
  [13, 'stop sign', '/m/02pv19', 'stop sign'],
  [14, 'parking meter', '/m/015qbp', 'parking meter'],
  [15, 'bench', '/m/0cvnqh', 'bench', 'furniture'],
  [16, 'bird', '/m/015p6', 'bird', 'animal'],
  [17, 'cat', '/m/01yrx', 'cat', 'animal'],
  [18, 'dog', '/m/0bt9lr', 'dog', 'animal'],
  [19, 'horse', '/m/03k3r', 'horse', 'animal'],
  [20, 'sheep', '/m/07bgp', 'sheep', 'animal'],
  // uncertain: Google's entity for cows is "cattle"; a single cow may be reported as "cow".
  [21, 'cow', '/m/01xq0k1', 'cattle', 'animal'],
  [22, 'elephant', '/m/0bwd_0j', 'elephant', 'animal'],
  [23, 'bear', '/m/01dws', 'bear', 'animal'],
  [24, 'zebra', '/m/0898b', 'zebra', 'animal'],
  [25, 'giraffe', '/m/03bk1', 'giraffe', 'animal'],
  [27, 'backpack', '/m/01940j', 'backpack', 'bag'],
  [28, 'umbrella', '/m/0hnnb', 'umbrella'],
  [31, 'handbag', '/m/080hkjn', 'handbag', 'bag'],
  [32, 'tie', '/m/01rkbr', 'tie'],
  [33, 'suitcase', '/m/01s55n', 'suitcase', 'bag'],
  // uncertain: the entity is "flying disc"; Google may say "frisbee".
  [34, 'frisbee', '/m/02wmf', 'flying disc'],
  [35, 'skis', '/m/071p9', 'ski'],
  [36, 'snowboard', '/m/06__v', 'snowboard', 'board'],
  // uncertain: COCO's "sports ball" has no single entity; "ball" is the general one.
  [37, 'sports ball', '/m/018xm', 'ball'],
  [38, 'kite', '/m/02zt3', 'kite'],
  [39, 'baseball bat', '/m/03g8mr', 'baseball bat'],
  [40, 'baseball glove', '/m/03grzl', 'baseball glove'],
  [41, 'skateboard', '/m/06_fw', 'skateboard', 'board'],
  [42, 'surfboard', '/m/019w40', 'surfboard', 'board'],
  [43, 'tennis racket', '/m/0h8my_4', 'tennis racket'],
  [44, 'bottle', '/m/04dr76w', 'bottle', 'vessel'],
  [46, 'wine glass', '/m/09tvcd', 'wine glass', 'vessel'],
  // uncertain: the general "cup" entity; Google often reports "coffee cup" (/m/02p5f1q) or "mug".
  [47, 'cup', '/m/02p5f1q', 'cup', 'vessel'],
  [48, 'fork', '/m/0dt3t', 'fork', 'cutlery'],
  [49, 'knife', '/m/04ctx', 'knife', 'cutlery'],
  [50, 'spoon', '/m/0cmx8', 'spoon', 'cutlery'],
  [51, 'bowl', '/m/04kkgm', 'bowl', 'vessel'],
  [52, 'banana', '/m/09qck', 'banana', 'food'],
  [53, 'apple', '/m/014j1m', 'apple', 'food'],
  [54, 'sandwich', '/m/0l515', 'sandwich', 'food'],
  [55, 'orange', '/m/0cyhj_', 'orange', 'food'],
  [56, 'broccoli', '/m/0hkxq', 'broccoli', 'food'],
  [57, 'carrot', '/m/0fj52s', 'carrot', 'food'],
  [58, 'hot dog', '/m/01b9xk', 'hot dog', 'food'],
  [59, 'pizza', '/m/0663v', 'pizza', 'food'],
  [60, 'donut', '/m/0jy4k', 'doughnut', 'food'],
  [61, 'cake', '/m/0fszt', 'cake', 'food'],
  [62, 'chair', '/m/01mzpv', 'chair', 'furniture'],
  [63, 'couch', '/m/02crq1', 'couch', 'furniture'],
  // uncertain: COCO's "potted plant"; the entity is "houseplant".
  [64, 'potted plant', '/m/03fp41', 'houseplant'],
  [65, 'bed', '/m/03ssj5', 'bed', 'furniture'],
  // uncertain: COCO's "dining table"; Google reports the general "table".
  [67, 'dining table', '/m/04bcr3', 'table', 'furniture'],
  [70, 'toilet', '/m/09g1w', 'toilet'],
  [72, 'tv', '/m/07c52', 'television', 'screen'],
  [73, 'laptop', '/m/01c648', 'laptop', 'screen'],
  [74, 'mouse', '/m/020lf', 'computer mouse'],
  [75, 'remote', '/m/0qjjc', 'remote control', 'handheld'],
  [76, 'keyboard', '/m/01m2v', 'computer keyboard'],
  [77, 'cell phone', '/m/050k8', 'mobile phone', 'handheld'],
  [78, 'microwave', '/m/0fx9l', 'microwave oven', 'appliance'],
  [79, 'oven', '/m/029bxz', 'oven', 'appliance'],
  [80, 'toaster', '/m/01k6s3', 'toaster', 'appliance'],
  [81, 'sink', '/m/0130jx', 'sink'],
  [82, 'refrigerator', '/m/040b_t', 'refrigerator', 'appliance'],
  [84, 'book', '/m/0bt_c3', 'book'],
  [85, 'clock', '/m/01x3z', 'clock'],
  [86, 'vase', '/m/02s195', 'vase', 'vessel'],
  [87, 'scissors', '/m/01lsmm', 'scissors'],
  [88, 'teddy bear', '/m/0kmg4', 'teddy bear'],
  // uncertain: COCO spells it "hair drier"; the entity is "hair dryer".
  [89, 'hair drier', '/m/03wvsk', 'hair dryer'],
  [90, 'toothbrush', '/m/012xff', 'toothbrush'],
];

export const COCO_ENTITIES: readonly CocoEntity[] = rows.map(
  ([cocoId, cocoName, entityId, description, family]) => ({
    cocoId,
    cocoName,
    entityId,
    description,
    family: family ?? cocoName,
  }),
);

const byId = new Map(COCO_ENTITIES.map((entity) => [entity.cocoId, entity]));

/** The entity for a COCO id; throws for an id that is not one of the 80 categories. */
export function entityFor(cocoId: number): CocoEntity {
  const entity = byId.get(cocoId);
  if (!entity) throw new RangeError(`${cocoId} is not a COCO category id.`);
  return entity;
}

export function isCocoId(cocoId: number): boolean {
  return byId.has(cocoId);
}

/** True when the detector may mistake one category for the other. */
export function sameFamily(a: number, b: number): boolean {
  const family = byId.get(a)?.family;
  return a === b || (family !== undefined && family === byId.get(b)?.family);
}

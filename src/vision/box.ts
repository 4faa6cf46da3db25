/** A box in normalized image coordinates: 0..1 from the left and from the top. */
export interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** One object the detector found in one frame. */
export interface Detection {
  box: Box;
  /** 0..1. */
  score: number;
  /** COCO category id (1..90, with the gaps of the original list). */
  classId: number;
}

export function area(box: Box): number {
  return Math.max(0, box.right - box.left) * Math.max(0, box.bottom - box.top);
}

export function iou(a: Box, b: Box): number {
  const width = Math.min(a.right, b.right) - Math.max(a.left, b.left);
  const height = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
  if (width <= 0 || height <= 0) return 0;
  const overlap = width * height;
  return overlap / (area(a) + area(b) - overlap);
}

export function clampBox(box: Box): Box {
  const clamp = (value: number): number => Math.min(1, Math.max(0, value));
  return {
    left: clamp(box.left),
    top: clamp(box.top),
    right: clamp(box.right),
    bottom: clamp(box.bottom),
  };
}

import type { Box } from './box.js';

/**
 * A constant-velocity Kalman filter on a box's centre and size. The four quantities (centre x,
 * centre y, width, height) move independently, so the filter is four small filters of
 * [position, velocity] each; that is exactly the 8-state filter with block-diagonal noise,
 * without the 8x8 algebra. Noise scales with the box's size, so small far objects and large near
 * ones are trusted alike.
 */

/** Relative standard deviations, as fractions of the box's size. */
export interface MotionNoise {
  /** How far a measurement may be off. */
  measurement: number;
  /** How much the velocity may change from one frame to the next. */
  acceleration: number;
  /** How unsure a new track's velocity is. */
  initialVelocity: number;
}

export const DEFAULT_MOTION_NOISE: MotionNoise = {
  measurement: 0.05,
  acceleration: 0.04,
  initialVelocity: 0.3,
};

/** How many times the size's measurement variance exceeds the centre's. */
const SIZE_DOUBT = 4;

class AxisFilter {
  position: number;
  velocity = 0;
  // Covariance [[pp, pv], [pv, vv]].
  private pp: number;
  private pv = 0;
  private vv: number;

  constructor(position: number, positionVar: number, velocityVar: number) {
    this.position = position;
    this.pp = positionVar;
    this.vv = velocityVar;
  }

  predict(accelerationVar: number): void {
    this.position += this.velocity;
    // P = F P F' + Q with F = [[1, 1], [0, 1]] and Q from a white-noise acceleration.
    const pp = this.pp + 2 * this.pv + this.vv + accelerationVar / 4;
    const pv = this.pv + this.vv + accelerationVar / 2;
    const vv = this.vv + accelerationVar;
    this.pp = pp;
    this.pv = pv;
    this.vv = vv;
  }

  update(measured: number, measurementVar: number): void {
    const innovation = measured - this.position;
    const s = this.pp + measurementVar;
    const gainP = this.pp / s;
    const gainV = this.pv / s;
    this.position += gainP * innovation;
    this.velocity += gainV * innovation;
    const pp = (1 - gainP) * this.pp;
    const pv = (1 - gainP) * this.pv;
    const vv = this.vv - gainV * this.pv;
    this.pp = pp;
    this.pv = pv;
    this.vv = vv;
  }
}

export class BoxFilter {
  private readonly axes: [AxisFilter, AxisFilter, AxisFilter, AxisFilter];
  private readonly noise: MotionNoise;

  constructor(box: Box, noise: MotionNoise = DEFAULT_MOTION_NOISE) {
    this.noise = noise;
    const [cx, cy, w, h] = toCentre(box);
    const scaleX = Math.max(w, 1e-3);
    const scaleY = Math.max(h, 1e-3);
    const make = (value: number, scale: number): AxisFilter =>
      new AxisFilter(value, (noise.measurement * scale) ** 2, (noise.initialVelocity * scale) ** 2);
    this.axes = [make(cx, scaleX), make(cy, scaleY), make(w, scaleX), make(h, scaleY)];
  }

  /** Advances one frame and returns the predicted box. */
  predict(): Box {
    const [scaleX, scaleY] = this.scales();
    const accelerationX = (this.noise.acceleration * scaleX) ** 2;
    const accelerationY = (this.noise.acceleration * scaleY) ** 2;
    this.axes[0].predict(accelerationX);
    this.axes[1].predict(accelerationY);
    // Size changes slowly: a quarter of the centre's freedom.
    this.axes[2].predict(accelerationX / 16);
    this.axes[3].predict(accelerationY / 16);
    // A box that shrinks through zero while coasting is held at a tiny size instead.
    for (const axis of [this.axes[2], this.axes[3]]) {
      if (axis.position < 1e-3) {
        axis.position = 1e-3;
        axis.velocity = 0;
      }
    }
    return this.box();
  }

  update(box: Box): Box {
    const measured = toCentre(box);
    const [scaleX, scaleY] = this.scales();
    const varX = (this.noise.measurement * scaleX) ** 2;
    const varY = (this.noise.measurement * scaleY) ** 2;
    // A box that shrinks suddenly is more often half hidden than smaller, so the size is
    // trusted less than the centre and follows the measurements more slowly.
    this.axes.forEach((axis, i) =>
      axis.update(measured[i] as number, (i % 2 === 0 ? varX : varY) * (i < 2 ? 1 : SIZE_DOUBT)),
    );
    return this.box();
  }

  box(): Box {
    const [cx, cy, w, h] = this.axes.map((axis) => axis.position) as [
      number,
      number,
      number,
      number,
    ];
    return { left: cx - w / 2, top: cy - h / 2, right: cx + w / 2, bottom: cy + h / 2 };
  }

  private scales(): [number, number] {
    return [Math.max(this.axes[2].position, 1e-3), Math.max(this.axes[3].position, 1e-3)];
  }
}

function toCentre(box: Box): [number, number, number, number] {
  const w = box.right - box.left;
  const h = box.bottom - box.top;
  return [box.left + w / 2, box.top + h / 2, w, h];
}

import type { Box } from './box.js';

/**
 * Drawing on RGB frames for previews: box outlines and short labels in a 5x7 pixel font, so a
 * preview needs no font file on the machine.
 */

export type Rgb = [number, number, number];

export interface RgbImage {
  width: number;
  height: number;
  /** `width * height * 3` bytes. */
  data: Buffer;
}

// Each glyph is 7 rows of 5 pixels, written as the row's bits ('#' on, '.' off).
const GLYPHS: Record<string, string> = {
  A: '.###.#...##...#######...##...##...#',
  B: '####.#...##...#####.#...##...#####.',
  C: '.###.#...##....#....#....#...#.###.',
  D: '####.#...##...##...##...##...#####.',
  E: '######....#....####.#....#....#####',
  F: '######....#....####.#....#....#....',
  G: '.###.#...##....#.####...##...#.####',
  H: '#...##...##...#######...##...##...#',
  I: '.###...#....#....#....#....#...###.',
  J: '..###...#....#....#....#.#..#..##..',
  K: '#...##..#.#.#..##...#.#..#..#.#...#',
  L: '#....#....#....#....#....#....#####',
  M: '#...###.###.#.##...##...##...##...#',
  N: '#...###..##.#.##..###...##...##...#',
  O: '.###.#...##...##...##...##...#.###.',
  P: '####.#...##...#####.#....#....#....',
  Q: '.###.#...##...##...##.#.##..#..##.#',
  R: '####.#...##...#####.#.#..#..#.#...#',
  S: '.#####....#.....###.....#....#####.',
  T: '#####..#....#....#....#....#....#..',
  U: '#...##...##...##...##...##...#.###.',
  V: '#...##...##...##...##...#.#.#...#..',
  W: '#...##...##...##.#.##.#.##.#.#.#.#.',
  X: '#...##...#.#.#...#...#.#.#...##...#',
  Y: '#...##...#.#.#...#....#....#....#..',
  Z: '#####....#...#...#...#...#....#####',
  '0': '.###.#...##..###.#.###..##...#.###.',
  '1': '..#...##....#....#....#....#...###.',
  '2': '.###.#...#....#...#...#...#...#####',
  '3': '#####...#...#.....#.....##...#.###.',
  '4': '...#...##..#.#.#..#.#####...#....#.',
  '5': '######....####.....#....##...#.###.',
  '6': '..##..#...#....####.#...##...#.###.',
  '7': '#####....#...#...#...#....#....#...',
  '8': '.###.#...##...#.###.#...##...#.###.',
  '9': '.###.#...##...#.####....#...#..##..',
  ' ': '...................................',
  '#': '.#.#..#.#.#####.#.#.#####.#.#..#.#.',
  '.': '..............................##...',
  ':': '.......##....................##....',
  '-': '...............#####...............',
  '%': '##...##..#...#...#...#...#..##...##',
  '/': '.........#...#...#...#...#.........',
};

const GLYPH_W = 5;
const GLYPH_H = 7;

export function fillRect(
  image: RgbImage,
  x0: number,
  y0: number,
  x1: number,
  y1: number,
  color: Rgb,
): void {
  const left = Math.max(0, Math.floor(x0));
  const top = Math.max(0, Math.floor(y0));
  const right = Math.min(image.width, Math.ceil(x1));
  const bottom = Math.min(image.height, Math.ceil(y1));
  for (let y = top; y < bottom; y++) {
    for (let x = left; x < right; x++) {
      const at = (y * image.width + x) * 3;
      image.data[at] = color[0];
      image.data[at + 1] = color[1];
      image.data[at + 2] = color[2];
    }
  }
}

/** An outline `thickness` pixels wide around a normalized box. */
export function drawBox(image: RgbImage, box: Box, color: Rgb, thickness = 2): void {
  const x0 = box.left * image.width;
  const y0 = box.top * image.height;
  const x1 = box.right * image.width;
  const y1 = box.bottom * image.height;
  fillRect(image, x0, y0, x1, y0 + thickness, color);
  fillRect(image, x0, y1 - thickness, x1, y1, color);
  fillRect(image, x0, y0, x0 + thickness, y1, color);
  fillRect(image, x1 - thickness, y0, x1, y1, color);
}

/** Text on a filled band, top-left at (x, y); letters are drawn in capitals. */
export function drawLabel(
  image: RgbImage,
  text: string,
  x: number,
  y: number,
  background: Rgb,
  scale = 1,
): void {
  const chars = [...text.toUpperCase()].map((c) => GLYPHS[c] ?? GLYPHS[' '] ?? '');
  const advance = (GLYPH_W + 1) * scale;
  const width = chars.length * advance + scale;
  const height = (GLYPH_H + 2) * scale;
  const top = Math.min(Math.max(0, Math.round(y)), Math.max(0, image.height - height));
  const left = Math.min(Math.max(0, Math.round(x)), Math.max(0, image.width - width));
  fillRect(image, left, top, left + width, top + height, background);
  const ink = luminance(background) > 140 ? ([0, 0, 0] as Rgb) : ([255, 255, 255] as Rgb);
  chars.forEach((glyph, i) => {
    for (let row = 0; row < GLYPH_H; row++) {
      for (let col = 0; col < GLYPH_W; col++) {
        if (glyph[row * GLYPH_W + col] !== '#') continue;
        const px = left + scale + i * advance + col * scale;
        const py = top + scale + row * scale;
        fillRect(image, px, py, px + scale, py + scale, ink);
      }
    }
  });
}

/** A distinct colour per track id. */
export function trackColor(id: number): Rgb {
  const hue = (id * 137.508) % 360;
  return hslToRgb(hue, 0.75, 0.5);
}

function luminance([r, g, b]: Rgb): number {
  return 0.299 * r + 0.587 * g + 0.114 * b;
}

function hslToRgb(hue: number, saturation: number, lightness: number): Rgb {
  const c = (1 - Math.abs(2 * lightness - 1)) * saturation;
  const x = c * (1 - Math.abs(((hue / 60) % 2) - 1));
  const m = lightness - c / 2;
  const [r, g, b] =
    hue < 60
      ? [c, x, 0]
      : hue < 120
        ? [x, c, 0]
        : hue < 180
          ? [0, c, x]
          : hue < 240
            ? [0, x, c]
            : hue < 300
              ? [x, 0, c]
              : [c, 0, x];
  return [Math.round((r + m) * 255), Math.round((g + m) * 255), Math.round((b + m) * 255)];
}

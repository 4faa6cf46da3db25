/**
 * Minimum-cost assignment on a rectangular cost matrix (the Hungarian method with row and column
 * potentials, O(n^2 m)). Returns, for each row, the column it is assigned to, or -1 when there
 * are more rows than columns and the row is left out.
 */
export function assignMinCost(cost: readonly (readonly number[])[]): number[] {
  const rows = cost.length;
  const cols = rows === 0 ? 0 : (cost[0]?.length ?? 0);
  if (rows === 0 || cols === 0) return new Array<number>(rows).fill(-1);
  if (rows > cols) {
    const transposed = Array.from({ length: cols }, (_, c) => cost.map((row) => at(row, c)));
    const byColumn = assignMinCost(transposed);
    const result = new Array<number>(rows).fill(-1);
    byColumn.forEach((row, column) => {
      if (row >= 0) result[row] = column;
    });
    return result;
  }

  // 1-based arrays with a sentinel column 0, as the method is usually written.
  const rowPotential = new Float64Array(rows + 1);
  const colPotential = new Float64Array(cols + 1);
  const rowOfColumn = new Int32Array(cols + 1);
  const previous = new Int32Array(cols + 1);
  for (let row = 1; row <= rows; row++) {
    rowOfColumn[0] = row;
    let column = 0;
    const slack = new Float64Array(cols + 1).fill(Infinity);
    const used = new Uint8Array(cols + 1);
    do {
      used[column] = 1;
      const currentRow = rowOfColumn[column] as number;
      let delta = Infinity;
      let next = 0;
      for (let c = 1; c <= cols; c++) {
        if (used[c]) continue;
        const reduced =
          at(cost[currentRow - 1], c - 1) -
          (rowPotential[currentRow] as number) -
          (colPotential[c] as number);
        if (reduced < (slack[c] as number)) {
          slack[c] = reduced;
          previous[c] = column;
        }
        if ((slack[c] as number) < delta) {
          delta = slack[c] as number;
          next = c;
        }
      }
      for (let c = 0; c <= cols; c++) {
        if (used[c]) {
          const r = rowOfColumn[c] as number;
          rowPotential[r] = (rowPotential[r] as number) + delta;
          colPotential[c] = (colPotential[c] as number) - delta;
        } else {
          slack[c] = (slack[c] as number) - delta;
        }
      }
      column = next;
    } while (rowOfColumn[column] !== 0);
    do {
      const before = previous[column] as number;
      rowOfColumn[column] = rowOfColumn[before] as number;
      column = before;
    } while (column !== 0);
  }

  const result = new Array<number>(rows).fill(-1);
  for (let c = 1; c <= cols; c++) {
    const row = rowOfColumn[c] as number;
    if (row > 0) result[row - 1] = c - 1;
  }
  return result;
}

function at(row: readonly number[] | undefined, column: number): number {
  const value = row?.[column];
  if (value === undefined || Number.isNaN(value)) {
    throw new RangeError(`The cost matrix has no number at column ${column}.`);
  }
  // Infinite costs would poison the potentials; a large finite cost keeps the method exact
  // for every pair that is allowed, and callers reject the forbidden pairs afterwards.
  return Number.isFinite(value) ? value : 1e9;
}

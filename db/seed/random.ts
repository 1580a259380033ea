/**
 * A small seeded PRNG for the demo data. Math.random cannot be seeded, and the demo data must
 * be the same for the same seed (tests look for planted cases by what the seed produced).
 * sfc32 is fast (the 10M-row bench set draws ~100M numbers) and passes PractRand far enough
 * for synthetic data.
 */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // splitmix32 spreads a small integer seed over the 128-bit state.
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.uint32();
  }

  /** An independent stream, so that adding draws to one part never shifts another part's data. */
  fork(label: number): Random {
    return new Random((this.uint32() ^ Math.imul(label + 1, 0x27d4eb2d)) >>> 0);
  }

  uint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.uint32() / 4294967296;
  }

  /** Uniform integer in [min, max], both inclusive. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error("pick from an empty list");
    return item;
  }

  /** Standard normal (Box–Muller; the second value is dropped for simplicity). */
  normal(): number {
    const u = 1 - this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }

  /** A random (version 4 shaped) UUID. */
  uuid(): string {
    return formatUuid(this.uint32(), this.uint32(), this.uint32(), this.uint32(), 4);
  }

  /**
   * A UUIDv7-shaped id: the millisecond timestamp first, then random bits. Rows generated in
   * time order then append to the primary-key index instead of splitting random pages, which
   * keeps a 10M-row COPY fast, as it would be for an app using time-ordered ids.
   */
  uuidAt(ms: number): string {
    const high = Math.floor(ms / 0x10000) >>> 0;
    const low = ms % 0x10000;
    return formatUuid(high, ((low << 16) | (this.uint32() & 0xffff)) >>> 0, this.uint32(), this.uint32(), 7);
  }
}

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, "0");

function formatUuid(w0: number, w1: number, w2: number, w3: number, version: 4 | 7): string {
  const v1 = ((w1 & 0xffff0fff) | (version << 12)) >>> 0;
  const v2 = ((w2 & 0x3fffffff) | 0x80000000) >>> 0;
  const s = hex8(w0) + hex8(v1) + hex8(v2) + hex8(w3);
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

/**
 * Picks indexes in proportion to their weights in O(log n): a cumulative table and a binary
 * search, fast enough for millions of draws over thousands of users.
 */
export class WeightedPicker {
  private readonly cumulative: Float64Array;
  private readonly total: number;

  constructor(weights: readonly number[]) {
    this.cumulative = new Float64Array(weights.length);
    let sum = 0;
    weights.forEach((w, i) => {
      sum += Math.max(0, w);
      this.cumulative[i] = sum;
    });
    if (sum <= 0) throw new Error("weighted pick needs a positive weight");
    this.total = sum;
  }

  pick(random: Random): number {
    const target = random.next() * this.total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.cumulative[mid] as number) > target) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
}

/**
 * A log-normal draw clipped to [min, max]: most calls near the geometric middle of the
 * range, a long right tail, and nothing outside it (outliers are planted on purpose only).
 */
export function clippedLogNormal(random: Random, min: number, max: number, skew = 0): number {
  if (min >= max) return min;
  const low = Math.log(Math.max(min, 1));
  const high = Math.log(max);
  const mu = (low + high) / 2 + skew * (high - low);
  const sigma = (high - low) / 4;
  const value = Math.round(Math.exp(mu + sigma * random.normal()));
  return Math.min(max, Math.max(min, value));
}

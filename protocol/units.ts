/**
 * Sizes and durations as people type and read them: `10GiB`, `500 MB`, `2s`, `15m`.
 * Pure; used by the CLI of both ends.
 *
 * @module
 */

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  k: 1024,
  m: 1024 ** 2,
  g: 1024 ** 3,
  t: 1024 ** 4,
};

/**
 * Parses a size such as `1048576`, `10GiB`, `1.5 GB` or `unlimited` (null).
 * `KiB/MiB/GiB` are powers of 1024, `KB/MB/GB` powers of 1000.
 *
 * @example
 * ```ts
 * parseSize("2MiB"); // 2097152
 * parseSize("2MB"); // 2000000
 * ```
 */
export function parseSize(text: string): number | null {
  const trimmed = text.trim().toLowerCase();
  if (trimmed === "unlimited" || trimmed === "none") return null;
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(trimmed);
  const unit = match ? SIZE_UNITS[match[2] ?? ""] : undefined;
  if (!match || unit === undefined) {
    throw new TypeError(`Invalid size "${text}": use a number with KiB, MiB, GiB, KB, MB or GB`);
  }
  const bytes = Math.round(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new RangeError(`Size "${text}" is too large`);
  return bytes;
}

/** Formats bytes for people: `0 B`, `4.0 KiB`, `1.5 GiB`. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = "B";
  for (const next of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${unit}`;
}

/** Parses a duration such as `2s`, `500ms`, `1.5s`, `2m` or a bare number of seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(text.trim().toLowerCase());
  if (!match) throw new TypeError(`Invalid duration "${text}": use e.g. 500ms, 2s or 1m`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] ?? "s"] ?? 1000;
  return Math.round(Number(match[1]) * factor);
}

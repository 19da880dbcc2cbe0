/**
 * Helpers shared by the SQLite and MySQL stores. Not for use outside server/db/.
 *
 * @module
 */

import type { Migration } from "../../sql/mod.ts";

/** Converts a database integer (number, bigint or decimal string) to a number. */
export function toNumber(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint" || typeof value === "string") {
    const n = Number(value);
    if (Number.isFinite(n)) return n;
  }
  throw new TypeError(`Expected an integer from the database, got "${String(value)}"`);
}

/** Like {@link toNumber}, but keeps null (and undefined) as null. */
export function toNumberOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : toNumber(value);
}

/** A nullable text column as a string or null. */
export function toStringOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

/** A Date as stored: Unix epoch milliseconds. */
export function toMillis(date: Date): number {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) throw new RangeError(`Invalid date "${String(date)}"`);
  return ms;
}

/** A stored epoch-milliseconds value as a Date. */
export function toDate(value: unknown): Date {
  return new Date(toNumber(value));
}

/** A nullable stored epoch-milliseconds value as a Date or null. */
export function toDateOrNull(value: unknown): Date | null {
  const ms = toNumberOrNull(value);
  return ms === null ? null : new Date(ms);
}

/** Checks an integer argument that is stored in a BIGINT column. */
export function checkInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value)) throw new RangeError(`Invalid ${what} "${value}"`);
  return value;
}

/**
 * The half-open range `[low, high)` of strings that start with `prefix + "/"`, for
 * bytewise (UTF-8, memcmp) comparison: "/" is 0x2F and "0" is 0x30, so every such string
 * sorts at or after `prefix/` and before `prefix0`, and nothing else does. Unlike LIKE it
 * needs no escaping of `%`, `_` or `\` and is case-sensitive on every dialect.
 */
export function subtreeRange(prefix: string): { low: string; high: string } {
  return { low: `${prefix}/`, high: `${prefix}0` };
}

/** Where `path` goes when `from` is renamed to `to` (it is `from` or under `from/`). */
export function renamedPath(path: string, from: string, to: string): string {
  return path === from ? to : to + path.slice(from.length);
}

/**
 * Splits a migration into statements: each ends with ";" at the end of a line. Lines
 * that start with `--` are comments and dropped.
 */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let current: string[] = [];
  for (const line of sql.split(/\r?\n/)) {
    if (line.trimStart().startsWith("--")) continue;
    current.push(line);
    if (/;\s*$/.test(line)) {
      const text = current.join("\n").trim().replace(/;\s*$/, "").trim();
      if (text !== "") statements.push(text);
      current = [];
    }
  }
  const rest = current.join("\n").trim();
  if (rest !== "") statements.push(rest);
  return statements;
}

/**
 * Checks the migration list (versions positive and strictly increasing) and the versions
 * a database recorded against it; returns the migrations still to apply.
 */
export function pendingMigrations(
  migrations: readonly Migration[],
  applied: ReadonlySet<number>,
): Migration[] {
  let last = 0;
  for (const m of migrations) {
    if (!Number.isSafeInteger(m.version) || m.version <= last) {
      throw new RangeError(`Migration "${m.name}" has a bad version "${m.version}"`);
    }
    last = m.version;
  }
  const newest = Math.max(0, ...applied);
  if (newest > last) {
    throw new RangeError(
      `Database schema version "${newest}" is newer than this program knows ("${last}")`,
    );
  }
  return migrations.filter((m) => !applied.has(m.version));
}

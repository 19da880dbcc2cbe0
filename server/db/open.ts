/**
 * Opens the {@link Store} named by a database URL and brings its schema up to date.
 *
 * URLs (SPEC.md section 2, `--db` / `CLOUD_DB`):
 * - `sqlite:PATH` — a file, relative to the working directory or absolute; its folder is
 *   created when missing. `sqlite::memory:` is a private in-memory database (tests).
 * - `mysql://USER:PASS@HOST:PORT/DATABASE` — MySQL 8 or MariaDB 10.6+; `mariadb://` is
 *   accepted as a synonym. Port defaults to 3306; user, password and database may be
 *   percent-encoded. One query option: `connectionLimit` (pool size, default 10).
 *
 * @module
 */

import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Store } from "../store.ts";
import { createMysqlStore, type MysqlStoreOptions } from "./mysql.ts";
import { openSqliteStore } from "./sqlite.ts";

/** A database URL taken apart; see {@link parseDbUrl}. */
export type DbTarget =
  | { dialect: "sqlite"; path: string }
  | { dialect: "mysql"; options: MysqlStoreOptions };

/**
 * Parses a database URL; throws TypeError, with the password redacted, when it is not a
 * `sqlite:` or `mysql://` URL or lacks a part.
 */
export function parseDbUrl(url: string): DbTarget {
  if (url.startsWith("sqlite:")) {
    const path = url.slice("sqlite:".length);
    if (path === "") throw new TypeError(`Database URL "${url}" has no file path`);
    return { dialect: "sqlite", path };
  }
  const shown = redactDbUrl(url);
  if (!/^(mysql|mariadb):\/\//i.test(url)) {
    throw new TypeError(
      `Unsupported database URL "${shown}": use sqlite:PATH or mysql://USER:PASS@HOST:PORT/DB`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`Invalid database URL "${shown}"`);
  }
  const decode = (part: string, what: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new TypeError(`Invalid ${what} in database URL "${shown}"`);
    }
  };
  const database = decode(parsed.pathname.replace(/^\//, ""), "database name");
  if (database === "" || database.includes("/")) {
    throw new TypeError(`Database URL "${shown}" must name one database: mysql://…/DB`);
  }
  if (parsed.hostname === "") throw new TypeError(`Database URL "${shown}" has no host`);
  const user = decode(parsed.username, "user name");
  if (user === "") throw new TypeError(`Database URL "${shown}" has no user name`);
  const options: MysqlStoreOptions = {
    // new URL() keeps the brackets of an IPv6 literal; the driver wants the bare address.
    host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: parsed.port === "" ? 3306 : Number(parsed.port),
    user,
    password: decode(parsed.password, "password"),
    database,
  };
  for (const [key, value] of parsed.searchParams) {
    if (key === "connectionLimit" && /^[1-9][0-9]{0,3}$/.test(value)) {
      options.connectionLimit = Number(value);
    } else {
      throw new TypeError(`Unsupported database URL option "${key}=${value}" in "${shown}"`);
    }
  }
  return { dialect: "mysql", options };
}

/**
 * Opens the store named by `url`, applies pending migrations and returns it. The caller
 * closes it.
 *
 * @example
 * ```ts
 * const store = await openStore(Deno.env.get("CLOUD_DB") ?? defaultDbUrl("./cloud-data"));
 * try {
 *   console.log(await store.listUsers());
 * } finally {
 *   await store.close();
 * }
 * ```
 */
export async function openStore(url: string): Promise<Store> {
  const target = parseDbUrl(url);
  let store: Store;
  if (target.dialect === "sqlite") {
    if (target.path !== ":memory:") mkdirSync(dirname(target.path), { recursive: true });
    store = openSqliteStore(target.path);
  } else {
    store = createMysqlStore(target.options);
  }
  try {
    await store.migrate();
  } catch (e) {
    await store.close().catch(() => {});
    throw e;
  }
  return store;
}

/**
 * The default database of a data directory: `sqlite:<dataDir>/cloud.db`.
 *
 * @example
 * ```ts
 * defaultDbUrl("./cloud-data"); // "sqlite:cloud-data/cloud.db"
 * ```
 */
export function defaultDbUrl(dataDir: string): string {
  return `sqlite:${join(dataDir, "cloud.db")}`;
}

/**
 * The URL with its password replaced by `***`, for logs and error messages. URLs without
 * a password (and `sqlite:` URLs) come back unchanged.
 *
 * @example
 * ```ts
 * redactDbUrl("mysql://app:s3cret@db:3306/security"); // "mysql://app:***@db:3306/security"
 * ```
 */
export function redactDbUrl(url: string): string {
  // Textual, so that it also works on URLs new URL() refuses. The userinfo ends at the
  // last "@" (before any query): a password may hold "@" or "/" when not encoded, and
  // redacting too much is the safe mistake.
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^?#]*)@/i.exec(url);
  if (match === null) return url;
  const [whole, scheme = "", userinfo = ""] = match;
  const colon = userinfo.indexOf(":");
  if (colon < 0 || colon === userinfo.length - 1) return url;
  return `${scheme}${userinfo.slice(0, colon)}:***@${url.slice(whole.length)}`;
}

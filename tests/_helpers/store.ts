/**
 * Fresh, empty databases for tests, for every dialect available: SQLite always (a file in
 * a new temporary folder), MySQL/MariaDB when `CLOUD_TEST_MYSQL_URL` is set (a new,
 * uniquely named database on that server, dropped afterwards; the URL's user needs
 * CREATE and DROP rights).
 *
 * @example Run one test body on every dialect
 * ```ts
 * for (const db of testDatabases()) {
 *   Deno.test(`[${db.name}] listUsers() starts empty`, async () => {
 *     await using fresh = await db.openStore();
 *     assert.deepEqual(await fresh.store.listUsers(), []);
 *   });
 * }
 * ```
 *
 * @example A URL for a server started as a subprocess (`--db URL`)
 * ```ts
 * await using fresh = await testDatabases()[0]!.create();
 * // ... run `cloud serve --db ${fresh.url}` ...
 * ```
 *
 * @module
 */

import { createConnection } from "mysql2/promise";
import { openStore } from "../../server/db/open.ts";
import type { Store } from "../../server/store.ts";

/** An empty database that is removed on dispose. */
export interface FreshDatabase extends AsyncDisposable {
  /** A `--db` URL for it: `sqlite:PATH` or `mysql://…/cloud_test_…`. */
  readonly url: string;
}

/** An open, migrated store on a fresh database; dispose closes and removes it. */
export interface FreshStore extends FreshDatabase {
  readonly store: Store;
}

/** One dialect tests can run on. */
export interface TestDatabase {
  /** "sqlite" or "mysql": put it in test names. */
  readonly name: "sqlite" | "mysql";
  /** Makes a fresh empty database (not migrated). */
  create(): Promise<FreshDatabase>;
  /** Makes a fresh database and opens it with `openStore` (so migrated). */
  openStore(): Promise<FreshStore>;
}

/** The environment variable that turns the MySQL runs on. */
export const MYSQL_URL_ENV = "CLOUD_TEST_MYSQL_URL";

/** The MySQL test server URL, or undefined when MySQL tests are off. */
export function mysqlTestUrl(): string | undefined {
  const url = Deno.env.get(MYSQL_URL_ENV);
  return url === undefined || url === "" ? undefined : url;
}

/** Every dialect to test on: SQLite, plus MySQL when `CLOUD_TEST_MYSQL_URL` is set. */
export function testDatabases(): TestDatabase[] {
  const list: TestDatabase[] = [withOpen("sqlite", freshSqlite)];
  const mysqlUrl = mysqlTestUrl();
  if (mysqlUrl !== undefined) list.push(withOpen("mysql", () => freshMysql(mysqlUrl)));
  return list;
}

function withOpen(
  name: "sqlite" | "mysql",
  create: () => Promise<FreshDatabase>,
): TestDatabase {
  return {
    name,
    create,
    async openStore() {
      const db = await create();
      let store: Store;
      try {
        store = await openStore(db.url);
      } catch (e) {
        await db[Symbol.asyncDispose]();
        throw e;
      }
      return {
        url: db.url,
        store,
        async [Symbol.asyncDispose]() {
          try {
            await store.close();
          } finally {
            await db[Symbol.asyncDispose]();
          }
        },
      };
    },
  };
}

async function freshSqlite(): Promise<FreshDatabase> {
  const dir = await Deno.makeTempDir({ prefix: "cloud_store_test_" });
  return {
    url: `sqlite:${dir}/cloud.db`,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

let counter = 0;

async function freshMysql(baseUrl: string): Promise<FreshDatabase> {
  const base = new URL(baseUrl);
  // Only [a-z0-9_]: safe to splice into CREATE/DROP DATABASE, which take no parameters.
  const name = `cloud_test_${Date.now().toString(36)}_${Deno.pid}_${counter++}_${
    Math.random().toString(36).slice(2, 8)
  }`;
  await admin(base, `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async [Symbol.asyncDispose]() {
      await admin(base, `DROP DATABASE IF EXISTS \`${name}\``);
    },
  };
}

async function admin(base: URL, sql: string): Promise<void> {
  const conn = await createConnection({
    host: base.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: base.port === "" ? 3306 : Number(base.port),
    user: decodeURIComponent(base.username),
    password: decodeURIComponent(base.password),
  });
  try {
    await conn.query(sql);
  } finally {
    await conn.end();
  }
}

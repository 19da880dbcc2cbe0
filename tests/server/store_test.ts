/**
 * The Store contract, run on SQLite always and on MySQL/MariaDB when CLOUD_TEST_MYSQL_URL
 * is set (see tests/_helpers/store.ts). Every test gets a fresh, migrated database.
 */

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { createConnection, type RowDataPacket } from "mysql2/promise";
import { CloudError, type ErrorCode } from "../../protocol/errors.ts";
import { createMysqlStore } from "../../server/db/mysql.ts";
import { parseDbUrl } from "../../server/db/open.ts";
import { openSqliteStore } from "../../server/db/sqlite.ts";
import type { FileRecord, Store } from "../../server/store.ts";
import { type Migration, MIGRATIONS } from "../../sql/mod.ts";
import { type FreshStore, type TestDatabase, testDatabases } from "../_helpers/store.ts";

const T0 = new Date("2026-01-02T03:04:05.678Z");
const MIN = 60_000;
const DAY = 24 * 60 * MIN;
const at = (offsetMs: number) => new Date(T0.getTime() + offsetMs);
const HASH = "ab".repeat(32);

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof CloudError, `expected a CloudError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  });
}

/** Opens a store on `url` without migrating (for migration tests). */
function rawStore(url: string, migrations?: readonly Migration[]): Store {
  const target = parseDbUrl(url);
  return target.dialect === "sqlite"
    ? openSqliteStore(target.path, migrations ? { migrations } : {})
    : createMysqlStore(migrations ? { ...target.options, migrations } : target.options);
}

/** Rows of schema_migrations, read with a separate connection. */
async function recordedMigrations(url: string): Promise<{ version: number; name: string }[]> {
  const target = parseDbUrl(url);
  const sql = "SELECT version, name, applied_at FROM schema_migrations ORDER BY version";
  let rows: Record<string, unknown>[];
  if (target.dialect === "sqlite") {
    const db = new DatabaseSync(target.path);
    try {
      rows = db.prepare(sql).all();
    } finally {
      db.close();
    }
  } else {
    const conn = await createConnection(target.options);
    try {
      [rows] = await conn.query<RowDataPacket[]>(
        sql,
      );
    } finally {
      await conn.end();
    }
  }
  for (const row of rows) assert.ok(Number(row.applied_at) > T0.getTime());
  return rows.map((r) => ({ version: Number(r.version), name: String(r.name) }));
}

async function addUser(store: Store, email: string): Promise<number> {
  return await store.createUser({ name: "Ann", email, phone: "+1 555 0100", passwordHash: "h" });
}

function file(userId: number, path: string, size = 1, modified = T0): FileRecord {
  return { userId, path, size, sha256: HASH, modified };
}

async function paths(store: Store, userId: number, prefix: string): Promise<string[]> {
  return (await store.listFiles(userId, prefix)).map((f) => f.path);
}

const REPO = new URL("../../", import.meta.url);

/** Opens the store at `url` from `count` separate processes started at once. */
async function openFromProcesses(url: string, count: number): Promise<void> {
  const code = `import { openStore } from ${
    JSON.stringify(
      new URL("server/db/open.ts", REPO).href,
    )
  };\nconst s = await openStore(${JSON.stringify(url)});\nawait s.close();\n`;
  const results = await Promise.all(
    Array.from({ length: count }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["eval", code],
        cwd: new URL(".", REPO).pathname,
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(60_000),
      }).output()),
  );
  for (const r of results) {
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  }
}

function storeTests(db: TestDatabase): void {
  const test = (name: string, fn: (store: Store, fresh: FreshStore) => Promise<void>) =>
    Deno.test(`[${db.name}] ${name}`, async () => {
      await using fresh = await db.openStore();
      await fn(fresh.store, fresh);
    });

  // --- migrations -------------------------------------------------------------------------

  Deno.test(`[${db.name}] migrate() applies 001_init once, records it, then does nothing`, async () => {
    await using fresh = await db.create();
    const store = rawStore(fresh.url);
    try {
      assert.deepEqual(await store.migrate(), ["001_init"]);
      assert.deepEqual(await store.migrate(), []);
      assert.equal(store.dialect, db.name);
    } finally {
      await store.close();
    }
    const again = rawStore(fresh.url);
    try {
      assert.deepEqual(await again.migrate(), []);
    } finally {
      await again.close();
    }
    assert.deepEqual(await recordedMigrations(fresh.url), [{ version: 1, name: "001_init" }]);
  });

  Deno.test(`[${db.name}] migrate() applies later migrations in order and only those`, async () => {
    await using fresh = await db.create();
    const base = MIGRATIONS[db.name];
    const extra: Migration[] = [
      {
        version: 2,
        name: "002_extra",
        sql: "-- a comment line\nCREATE TABLE extra_a (id INT NOT NULL PRIMARY KEY);\n" +
          "INSERT INTO extra_a (id) VALUES (7);\n",
      },
      { version: 3, name: "003_more", sql: "CREATE TABLE extra_b (id INT NOT NULL);\n" },
    ];
    const first = rawStore(fresh.url, base);
    try {
      assert.deepEqual(await first.migrate(), ["001_init"]);
    } finally {
      await first.close();
    }
    const second = rawStore(fresh.url, [...base, ...extra]);
    try {
      assert.deepEqual(await second.migrate(), ["002_extra", "003_more"]);
      assert.deepEqual(await second.migrate(), []);
    } finally {
      await second.close();
    }
    assert.deepEqual((await recordedMigrations(fresh.url)).map((m) => m.name), [
      "001_init",
      "002_extra",
      "003_more",
    ]);
    // A program that knows fewer migrations than the database refuses to run on it.
    const old = rawStore(fresh.url, base);
    try {
      await assert.rejects(old.migrate(), RangeError);
    } finally {
      await old.close();
    }
  });

  Deno.test(`[${db.name}] migrate() is safe when processes start at once`, async () => {
    await using fresh = await db.create();
    await openFromProcesses(fresh.url, 3);
    assert.deepEqual(await recordedMigrations(fresh.url), [{ version: 1, name: "001_init" }]);
  });

  if (db.name === "sqlite") {
    test("the SQLite file is in WAL mode", async (_store, fresh) => {
      const raw = new DatabaseSync(fresh.url.slice("sqlite:".length));
      try {
        assert.equal(raw.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
      } finally {
        raw.close();
      }
      await Promise.resolve();
    });
  }

  // --- users ------------------------------------------------------------------------------

  test("createUser() stores every field and find/list return it", async (store) => {
    const before = Date.now();
    const id = await store.createUser({
      name: "Zoë Ångström",
      email: "zoe@example.org",
      phone: "+44 (0)20 7946-0000",
      passwordHash: "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
    });
    assert.ok(Number.isSafeInteger(id) && id > 0);
    const user = await store.findUserByEmail("zoe@example.org");
    assert.ok(user);
    assert.equal(user.id, id);
    assert.equal(user.name, "Zoë Ångström");
    assert.equal(user.phone, "+44 (0)20 7946-0000");
    assert.equal(user.passwordHash, "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234");
    assert.equal(user.quotaBytes, null);
    assert.ok(user.createdAt.getTime() >= before && user.createdAt.getTime() <= Date.now());
    assert.deepEqual(await store.findUserById(id), user);
    assert.deepEqual(await store.listUsers(), [user]);
    assert.equal(await store.findUserByEmail("nobody@example.org"), null);
    assert.equal(await store.findUserById(id + 1000), null);
  });

  test("createUser() refuses a taken email with E_EXISTS", async (store) => {
    await addUser(store, "a@example.org");
    await rejectsWith(addUser(store, "a@example.org"), "E_EXISTS");
    assert.equal((await store.listUsers()).length, 1);
  });

  test("emails compare exactly (callers normalise)", async (store) => {
    await addUser(store, "a@example.org");
    assert.equal(await store.findUserByEmail("A@example.org"), null);
  });

  test("listUsers() orders by id and ids are never reused", async (store) => {
    const a = await addUser(store, "a@example.org");
    const b = await addUser(store, "b@example.org");
    assert.ok(b > a);
    await store.deleteUser(b);
    const c = await addUser(store, "c@example.org");
    assert.ok(c > b);
    assert.deepEqual((await store.listUsers()).map((u) => u.email), [
      "a@example.org",
      "c@example.org",
    ]);
  });

  test("setPasswordHash() and setQuota() update one user", async (store) => {
    const a = await addUser(store, "a@example.org");
    const b = await addUser(store, "b@example.org");
    await store.setPasswordHash(a, "new-hash");
    await store.setQuota(a, 5 * 2 ** 40);
    assert.equal((await store.findUserById(a))?.passwordHash, "new-hash");
    assert.equal((await store.findUserById(a))?.quotaBytes, 5 * 2 ** 40);
    assert.equal((await store.findUserById(b))?.passwordHash, "h");
    assert.equal((await store.findUserById(b))?.quotaBytes, null);
    await store.setQuota(a, 0);
    assert.equal((await store.findUserById(a))?.quotaBytes, 0);
    await store.setQuota(a, null);
    assert.equal((await store.findUserById(a))?.quotaBytes, null);
    await assert.rejects(store.setQuota(a, 1.5), RangeError);
  });

  test("deleteUser() removes the user, their files and known sources only", async (store) => {
    const a = await addUser(store, "a@example.org");
    const b = await addUser(store, "b@example.org");
    await store.putFile(file(a, "x/1"));
    await store.putFile(file(b, "x/1"));
    await store.recordKnownSource(a, "10.0.0.1", T0);
    await store.recordKnownSource(b, "10.0.0.1", T0);
    await store.audit({
      event: "login_ok",
      email: "a@example.org",
      source: "10.0.0.1",
      userId: a,
      detail: null,
      at: T0,
    });
    await store.deleteUser(a);
    assert.equal(await store.findUserById(a), null);
    assert.equal(await store.findUserByEmail("a@example.org"), null);
    assert.deepEqual(await store.listFiles(a, ""), []);
    assert.deepEqual(await store.usage(a), { bytes: 0, files: 0 });
    assert.equal(await store.isKnownSource(a, "10.0.0.1", at(-DAY)), false);
    assert.deepEqual((await store.allFiles()).map((f) => [f.userId, f.path]), [[b, "x/1"]]);
    assert.equal(await store.isKnownSource(b, "10.0.0.1", at(-DAY)), true);
    // The audit log is the security record: it outlives the account.
    assert.equal((await store.listAudit(10)).length, 1);
    // The email is free again.
    assert.ok(await addUser(store, "a@example.org") > b);
  });

  // --- email lock state -------------------------------------------------------------------

  test("email lock state round-trips", async (store) => {
    const email = "victim@example.org";
    assert.deepEqual(await store.getEmailLock(email), {
      failures: 0,
      lockedUntil: null,
      lockCount: 0,
    });
    assert.equal(await store.addEmailFailure(email), 1);
    assert.equal(await store.addEmailFailure(email), 2);
    assert.deepEqual(await store.getEmailLock(email), {
      failures: 2,
      lockedUntil: null,
      lockCount: 0,
    });
    await store.lockEmail(email, at(15 * MIN));
    assert.deepEqual(await store.getEmailLock(email), {
      failures: 0,
      lockedUntil: at(15 * MIN),
      lockCount: 1,
    });
    assert.equal(await store.addEmailFailure(email), 1);
    await store.lockEmail(email, at(30 * MIN));
    assert.deepEqual(await store.getEmailLock(email), {
      failures: 0,
      lockedUntil: at(30 * MIN),
      lockCount: 2,
    });
    await store.addEmailFailure(email);
    await store.resetEmailLock(email);
    assert.deepEqual(await store.getEmailLock(email), {
      failures: 0,
      lockedUntil: null,
      lockCount: 2,
    });
    await store.resetEmailLock(email, true);
    assert.deepEqual(await store.getEmailLock(email), {
      failures: 0,
      lockedUntil: null,
      lockCount: 0,
    });
    // Locking an email never seen before works too, and touches no other email.
    await store.lockEmail("other@example.org", at(MIN));
    assert.equal((await store.getEmailLock("other@example.org")).lockCount, 1);
    assert.equal((await store.getEmailLock(email)).lockCount, 0);
    // Resetting an unknown email is a no-op.
    await store.resetEmailLock("unknown@example.org");
    assert.deepEqual(await store.getEmailLock("unknown@example.org"), {
      failures: 0,
      lockedUntil: null,
      lockCount: 0,
    });
  });

  test("addEmailFailure() counts 10 concurrent failures exactly", async (store) => {
    const counts = await Promise.all(
      Array.from({ length: 10 }, () => store.addEmailFailure("race@example.org")),
    );
    assert.deepEqual(counts.toSorted((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert.equal((await store.getEmailLock("race@example.org")).failures, 10);
  });

  // --- sources ----------------------------------------------------------------------------

  test("countSourceFailures() counts one source inside the window", async (store) => {
    const src = "192.0.2.7";
    assert.equal(await store.countSourceFailures(src, at(-10 * MIN)), 0);
    await store.addSourceFailure(src, at(-20 * MIN));
    await store.addSourceFailure(src, at(-10 * MIN));
    await store.addSourceFailure(src, at(-5 * MIN));
    await store.addSourceFailure(src, at(-1));
    await store.addSourceFailure("2001:db8:0:100::/56", at(-1));
    assert.equal(await store.countSourceFailures(src, at(-10 * MIN)), 3);
    assert.equal(await store.countSourceFailures(src, at(-30 * MIN)), 4);
    assert.equal(await store.countSourceFailures(src, at(0)), 0);
    assert.equal(await store.countSourceFailures("2001:db8:0:100::/56", at(-MIN)), 1);
  });

  test("source blocks are set, replaced and cleared with the failures", async (store) => {
    const src = "192.0.2.8";
    assert.equal(await store.getSourceBlock(src), null);
    assert.equal(await store.clearSource(src), false);
    await store.setSourceBlock(src, at(15 * MIN));
    assert.deepEqual(await store.getSourceBlock(src), at(15 * MIN));
    await store.setSourceBlock(src, at(30 * MIN));
    assert.deepEqual(await store.getSourceBlock(src), at(30 * MIN));
    await store.addSourceFailure(src, at(0));
    await store.addSourceFailure("192.0.2.9", at(0));
    assert.equal(await store.clearSource(src), true);
    assert.equal(await store.getSourceBlock(src), null);
    assert.equal(await store.countSourceFailures(src, at(-DAY)), 0);
    assert.equal(await store.countSourceFailures("192.0.2.9", at(-DAY)), 1);
    assert.equal(await store.clearSource(src), false);
    // Failures alone count as something to clear.
    assert.equal(await store.clearSource("192.0.2.9"), true);
  });

  test("isKnownSource() honours the window, the user and the source", async (store) => {
    const a = await addUser(store, "a@example.org");
    const b = await addUser(store, "b@example.org");
    assert.equal(await store.isKnownSource(a, "10.0.0.1", at(-30 * DAY)), false);
    await store.recordKnownSource(a, "10.0.0.1", at(-40 * DAY));
    assert.equal(await store.isKnownSource(a, "10.0.0.1", at(-30 * DAY)), false);
    assert.equal(await store.isKnownSource(a, "10.0.0.1", at(-40 * DAY)), true);
    await store.recordKnownSource(a, "10.0.0.1", at(0));
    assert.equal(await store.isKnownSource(a, "10.0.0.1", at(-30 * DAY)), true);
    // An older success recorded late does not move the last success back.
    await store.recordKnownSource(a, "10.0.0.1", at(-50 * DAY));
    assert.equal(await store.isKnownSource(a, "10.0.0.1", at(-30 * DAY)), true);
    assert.equal(await store.isKnownSource(b, "10.0.0.1", at(-30 * DAY)), false);
    assert.equal(await store.isKnownSource(a, "10.0.0.2", at(-30 * DAY)), false);
    await rejectsWith(store.recordKnownSource(b + 1000, "10.0.0.1", T0), "E_NOT_FOUND");
  });

  // --- audit ------------------------------------------------------------------------------

  test("listAudit() returns events newest first, up to the limit", async (store) => {
    const a = await addUser(store, "a@example.org");
    await store.audit({
      event: "login_fail",
      email: "a@example.org",
      source: "192.0.2.1",
      userId: null,
      detail: "bad password",
      at: at(-2 * MIN),
    });
    await store.audit({
      event: "login_ok",
      email: "a@example.org",
      source: "192.0.2.1",
      userId: a,
      detail: null,
      at: at(0),
    });
    await store.audit({
      event: "unblock",
      email: null,
      source: "192.0.2.1",
      userId: null,
      detail: null,
      at: at(-MIN),
    });
    // Same time as login_ok, inserted later: comes first.
    await store.audit({
      event: "lock",
      email: "b@example.org",
      source: null,
      userId: null,
      detail: "até 15 min",
      at: at(0),
    });
    const events = await store.listAudit(10);
    assert.deepEqual(events.map((e) => e.event), ["lock", "login_ok", "unblock", "login_fail"]);
    assert.deepEqual(events[1], {
      event: "login_ok",
      email: "a@example.org",
      source: "192.0.2.1",
      userId: a,
      detail: null,
      at: at(0),
    });
    assert.equal(events[0]?.detail, "até 15 min");
    assert.deepEqual((await store.listAudit(2)).map((e) => e.event), ["lock", "login_ok"]);
    assert.deepEqual(await store.listAudit(0), []);
  });

  // --- files ------------------------------------------------------------------------------

  test("putFile() inserts and replaces; getFile() and deleteFile() by exact path", async (store) => {
    const u = await addUser(store, "a@example.org");
    const rec = file(u, "docs/report.pdf", 1234, at(-MIN));
    await store.putFile(rec);
    assert.deepEqual(await store.getFile(u, "docs/report.pdf"), rec);
    const replaced = { ...rec, size: 2 ** 40 + 3, sha256: "cd".repeat(32), modified: at(0) };
    await store.putFile(replaced);
    assert.deepEqual(await store.getFile(u, "docs/report.pdf"), replaced);
    assert.deepEqual(await store.usage(u), { bytes: 2 ** 40 + 3, files: 1 });
    assert.equal(await store.getFile(u, "docs/Report.pdf"), null);
    assert.equal(await store.getFile(u, "docs/report.pdf "), null);
    assert.equal(await store.getFile(u, "docs"), null);
    assert.equal(await store.deleteFile(u, "docs/report.pdf"), true);
    assert.equal(await store.deleteFile(u, "docs/report.pdf"), false);
    assert.equal(await store.getFile(u, "docs/report.pdf"), null);
    await rejectsWith(store.putFile(file(u + 1000, "x")), "E_NOT_FOUND");
  });

  test("paths are case-sensitive, exact bytes, and may be 4096 bytes long", async (store) => {
    const u = await addUser(store, "a@example.org");
    const long = `${"é".repeat(2000)}/${"x".repeat(4096 - 4001)}`;
    assert.equal(new TextEncoder().encode(long).length, 4096);
    const names = ["A", "a", "a ", "ä", "a\u0308", long, "日本/語.txt"];
    for (const [i, name] of names.entries()) await store.putFile(file(u, name, i + 1));
    for (const [i, name] of names.entries()) {
      assert.equal((await store.getFile(u, name))?.size, i + 1, JSON.stringify(name));
    }
    assert.deepEqual(await store.usage(u), { bytes: 28, files: 7 });
  });

  test("listFiles() returns the prefix and its subtree, never lookalikes", async (store) => {
    const u = await addUser(store, "a@example.org");
    const v = await addUser(store, "b@example.org");
    const all = [
      "a%b/1",
      "a%b/sub/2",
      "a%bc/3",
      "a_b/4",
      "axb/5",
      "a\\b/6",
      "a\\\\b/7",
      "aXb/8",
      "docs",
      "docs/x",
      "docs/y/z",
      "docs0/q",
      "docs.bak",
      "docs-old/x",
      "Docs/x",
    ];
    for (const p of all) await store.putFile(file(u, p));
    await store.putFile(file(v, "docs/other-user"));
    assert.deepEqual(await paths(store, u, "a%b"), ["a%b/1", "a%b/sub/2"]);
    assert.deepEqual(await paths(store, u, "a_b"), ["a_b/4"]);
    assert.deepEqual(await paths(store, u, "a\\b"), ["a\\b/6"]);
    assert.deepEqual(await paths(store, u, "docs"), ["docs", "docs/x", "docs/y/z"]);
    assert.deepEqual(await paths(store, u, "docs/y"), ["docs/y/z"]);
    assert.deepEqual(await paths(store, u, "docs/x"), ["docs/x"]);
    assert.deepEqual(await paths(store, u, "nothing"), []);
    assert.deepEqual(await paths(store, u, "%"), []);
    assert.deepEqual(await paths(store, u, ""), all.toSorted(byUtf8));
    assert.deepEqual(await paths(store, v, ""), ["docs/other-user"]);
    assert.deepEqual(
      (await store.allFiles()).map((f) => `${f.userId === u ? "u" : "v"}:${f.path}`),
      [...all.toSorted(byUtf8).map((p) => `u:${p}`), "v:docs/other-user"],
    );
  });

  test("deleteTree() deletes the prefix and its subtree only", async (store) => {
    const u = await addUser(store, "a@example.org");
    const v = await addUser(store, "b@example.org");
    for (const p of ["d", "d/1", "d/e/2", "d_x/3", "dx/4", "d%/5"]) {
      await store.putFile(file(u, p, 10));
    }
    await store.putFile(file(v, "d/1"));
    assert.equal(await store.deleteTree(u, "d%"), 1);
    assert.equal(await store.deleteTree(u, "d"), 3);
    assert.deepEqual(await paths(store, u, ""), ["d_x/3", "dx/4"]);
    assert.equal(await store.deleteTree(u, "d"), 0);
    assert.deepEqual(await store.usage(u), { bytes: 20, files: 2 });
    assert.equal(await store.deleteTree(u, ""), 2);
    assert.deepEqual(await paths(store, v, ""), ["d/1"]);
  });

  test("renamePath() moves one file, or a whole subtree, keeping the metadata", async (store) => {
    const u = await addUser(store, "a@example.org");
    const v = await addUser(store, "b@example.org");
    await store.putFile(file(u, "one.txt", 5, at(-DAY)));
    await store.renamePath(u, "one.txt", "dir/two.txt");
    assert.equal(await store.getFile(u, "one.txt"), null);
    assert.deepEqual(await store.getFile(u, "dir/two.txt"), file(u, "dir/two.txt", 5, at(-DAY)));

    for (const p of ["a%/1", "a%/b/2", "a%/b/c/3", "a%x/4", "a_/5"]) {
      await store.putFile(file(u, p, 7));
    }
    await store.putFile(file(v, "a%/1"));
    await store.renamePath(u, "a%", "new/place");
    assert.deepEqual(await paths(store, u, ""), [
      "a%x/4",
      "a_/5",
      "dir/two.txt",
      "new/place/1",
      "new/place/b/2",
      "new/place/b/c/3",
    ]);
    assert.deepEqual(await paths(store, v, ""), ["a%/1"]);
    assert.deepEqual(await store.usage(u), { bytes: 5 + 5 * 7, files: 6 });

    // Moving a folder up over its own parent's name cannot collide with itself midway.
    for (const p of ["p/q/x", "p/q/q/x"]) await store.putFile(file(u, p, 1));
    await store.renamePath(u, "p/q", "p");
    assert.deepEqual(await paths(store, u, "p"), ["p/q/x", "p/x"]);

    // Nothing to move is not an error; renaming onto itself is a no-op.
    await store.renamePath(u, "missing", "elsewhere");
    await store.renamePath(u, "dir", "dir");
    assert.deepEqual(await paths(store, u, "dir"), ["dir/two.txt"]);
    await rejectsWith(store.renamePath(u, "dir", "dir/sub"), "E_CONFLICT");
  });

  test("renamePath() onto an existing record fails with E_EXISTS and changes nothing", async (store) => {
    const u = await addUser(store, "a@example.org");
    for (const p of ["src/1", "src/2", "src/3", "dst/2"]) await store.putFile(file(u, p));
    const before = await store.listFiles(u, "");
    await rejectsWith(store.renamePath(u, "src", "dst"), "E_EXISTS");
    assert.deepEqual(await store.listFiles(u, ""), before);
    await store.putFile(file(u, "lone"));
    await rejectsWith(store.renamePath(u, "lone", "src/1"), "E_EXISTS");
    assert.deepEqual(await paths(store, u, ""), ["dst/2", "lone", "src/1", "src/2", "src/3"]);
  });

  test("usage() sums sizes per user", async (store) => {
    const u = await addUser(store, "a@example.org");
    const v = await addUser(store, "b@example.org");
    assert.deepEqual(await store.usage(u), { bytes: 0, files: 0 });
    await store.putFile(file(u, "a", 2 ** 33));
    await store.putFile(file(u, "b/c", 17));
    await store.putFile(file(v, "a", 99));
    assert.deepEqual(await store.usage(u), { bytes: 2 ** 33 + 17, files: 2 });
    assert.deepEqual(await store.usage(v), { bytes: 99, files: 1 });
  });
}

/** Sorts strings by their UTF-8 bytes, as both databases order paths. */
function byUtf8(a: string, b: string): number {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i]! - y[i]!;
  }
  return x.length - y.length;
}

for (const db of testDatabases()) storeTests(db);

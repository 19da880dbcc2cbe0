import assert from "node:assert/strict";
import { defaultDbUrl, openStore, parseDbUrl, redactDbUrl } from "../../../server/db/open.ts";

Deno.test("parseDbUrl() reads sqlite: URLs", () => {
  assert.deepEqual(parseDbUrl("sqlite:/var/lib/cloud/cloud.db"), {
    dialect: "sqlite",
    path: "/var/lib/cloud/cloud.db",
  });
  assert.deepEqual(parseDbUrl("sqlite:data/c.db"), { dialect: "sqlite", path: "data/c.db" });
  assert.throws(() => parseDbUrl("sqlite:"), TypeError);
});

Deno.test("parseDbUrl() reads mysql:// URLs, decoding user, password and database", () => {
  assert.deepEqual(parseDbUrl("mysql://root:@127.0.0.1:3306/security"), {
    dialect: "mysql",
    options: {
      host: "127.0.0.1",
      port: 3306,
      user: "root",
      password: "",
      database: "security",
    },
  });
  assert.deepEqual(parseDbUrl("mariadb://a%40b:p%2Fw%3Ad@[::1]/my%2Ddb?connectionLimit=4"), {
    dialect: "mysql",
    options: {
      host: "::1",
      port: 3306,
      user: "a@b",
      password: "p/w:d",
      database: "my-db",
      connectionLimit: 4,
    },
  });
});

Deno.test("parseDbUrl() refuses other schemes and incomplete URLs with TypeError", () => {
  for (
    const url of [
      "postgres://u:p@h/db",
      "cloud.db",
      "",
      "mysql://u:p@h:3306/",
      "mysql://u:p@h/a/b",
      "mysql://:p@h/db",
      "mysql://u:p@h/db?ssl=true",
    ]
  ) {
    assert.throws(() => parseDbUrl(url), TypeError, url);
  }
});

Deno.test("parseDbUrl() errors never show the password", () => {
  assert.throws(
    () => parseDbUrl("postgres://u:hunter2@h/db"),
    (e: unknown) => e instanceof TypeError && !e.message.includes("hunter2"),
  );
  assert.throws(
    () => parseDbUrl("mysql://u:hunter2@h/"),
    (e: unknown) => e instanceof TypeError && !e.message.includes("hunter2"),
  );
});

Deno.test("redactDbUrl() hides only the password", () => {
  assert.equal(
    redactDbUrl("mysql://app:s3cret@db.lan:3306/security"),
    "mysql://app:***@db.lan:3306/security",
  );
  assert.equal(redactDbUrl("mysql://app:p@ss@db/x"), "mysql://app:***@db/x");
  assert.equal(redactDbUrl("mysql://root:@127.0.0.1/x"), "mysql://root:@127.0.0.1/x");
  assert.equal(redactDbUrl("mysql://root@127.0.0.1/x"), "mysql://root@127.0.0.1/x");
  assert.equal(redactDbUrl("sqlite:/tmp/a:b@c.db"), "sqlite:/tmp/a:b@c.db");
});

Deno.test("defaultDbUrl() is cloud.db in the data directory", () => {
  assert.equal(defaultDbUrl("/srv/cloud-data"), "sqlite:/srv/cloud-data/cloud.db");
  assert.equal(defaultDbUrl("./cloud-data"), "sqlite:cloud-data/cloud.db");
});

Deno.test("openStore() creates the SQLite file's folder and migrates", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await openStore(`sqlite:${dir}/nested/deeper/cloud.db`);
    try {
      assert.equal(store.dialect, "sqlite");
      assert.deepEqual(await store.migrate(), []);
      assert.deepEqual(await store.listUsers(), []);
    } finally {
      await store.close();
    }
    assert.ok((await Deno.stat(`${dir}/nested/deeper/cloud.db`)).isFile);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openStore() refuses an unknown scheme with TypeError", async () => {
  await assert.rejects(openStore("postgres://u:p@h/db"), TypeError);
});

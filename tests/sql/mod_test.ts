import assert from "node:assert/strict";
import { MIGRATIONS } from "../../sql/mod.ts";

const SQL_DIR = new URL("../../sql/", import.meta.url);

for (const dialect of ["sqlite", "mysql"] as const) {
  Deno.test(`MIGRATIONS.${dialect} lists every sql/${dialect}/*.sql file, in order`, async () => {
    const files: string[] = [];
    for await (const entry of Deno.readDir(new URL(`${dialect}/`, SQL_DIR))) {
      if (entry.isFile && entry.name.endsWith(".sql")) files.push(entry.name);
    }
    files.sort();
    const listed = MIGRATIONS[dialect];
    assert.deepEqual(listed.map((m) => `${m.name}.sql`), files);
    for (const [i, m] of listed.entries()) {
      assert.match(m.name, /^\d{3}_[a-z0-9_]+$/);
      assert.equal(m.version, i + 1);
      assert.equal(m.version, Number(m.name.slice(0, 3)));
      const text = await Deno.readTextFile(new URL(`${dialect}/${m.name}.sql`, SQL_DIR));
      assert.equal(m.sql, text);
    }
  });
}

Deno.test("both dialects have the same migrations", () => {
  assert.deepEqual(
    MIGRATIONS.sqlite.map((m) => [m.version, m.name]),
    MIGRATIONS.mysql.map((m) => [m.version, m.name]),
  );
});

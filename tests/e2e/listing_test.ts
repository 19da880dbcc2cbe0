import assert from "node:assert/strict";
import { join } from "node:path";
import { e2eTest, GOOD_PASSWORD } from "./_harness.ts";

e2eTest("ls lists a folder larger than one frame, page by page, each entry once", async (f) => {
  assert.equal((await f.register("ada@example.com", GOOD_PASSWORD)).code, 0);
  const dir = join(f.dir, "many");
  await Deno.mkdir(dir);
  // 600 entries with 200-byte names: about 180 KiB of listing, several 64 KiB frames.
  const names: string[] = [];
  for (let i = 0; i < 600; i++) {
    const name = `${String(i).padStart(4, "0")}-${"n".repeat(195)}`;
    names.push(name);
    await Deno.writeTextFile(join(dir, name), `file ${i}`);
  }
  const put = await f.as("ada@example.com", GOOD_PASSWORD, ["put", dir]);
  assert.equal(put.code, 0, put.stderr);
  const ls = await f.as("ada@example.com", GOOD_PASSWORD, ["ls", "many", "--json"]);
  assert.equal(ls.code, 0, ls.stderr);
  const entries = JSON.parse(ls.stdout) as { name: string; size: number }[];
  assert.deepEqual(entries.map((e) => e.name), names);
  assert.equal(entries[599]!.size, "file 599".length);
});

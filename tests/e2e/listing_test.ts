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

e2eTest("get of a folder brings down the whole tree, next to single files", async (f) => {
  assert.equal((await f.register("ada@example.com", GOOD_PASSWORD)).code, 0);
  const src = join(f.dir, "tree");
  await Deno.mkdir(join(src, "a", "b"), { recursive: true });
  await Deno.writeTextFile(join(src, "top.txt"), "top");
  await Deno.writeTextFile(join(src, "a", "mid.txt"), "mid");
  await Deno.writeTextFile(join(src, "a", "b", "deep.txt"), "deep");
  await Deno.writeTextFile(join(f.dir, "single.txt"), "single");
  const as = (...args: string[]) => f.as("ada@example.com", GOOD_PASSWORD, args);
  assert.equal((await as("put", src, join(f.dir, "single.txt"))).code, 0);
  const out = join(f.dir, "out");
  await Deno.mkdir(join(out, "tree"), { recursive: true }); // an existing local folder merges
  const get = await as("get", "tree", "single.txt", "--out", out);
  assert.equal(get.code, 0, get.stderr);
  assert.equal(await Deno.readTextFile(join(out, "single.txt")), "single");
  assert.equal(await Deno.readTextFile(join(out, "tree", "top.txt")), "top");
  assert.equal(await Deno.readTextFile(join(out, "tree", "a", "mid.txt")), "mid");
  assert.equal(await Deno.readTextFile(join(out, "tree", "a", "b", "deep.txt")), "deep");
  // A name that is neither a file nor a folder is exit 5, and the rest still come down.
  const mixed = await as("get", "nope", "single.txt", "--out", join(f.dir, "out2"));
  assert.equal(mixed.code, 5, mixed.stderr);
  assert.equal(await Deno.readTextFile(join(f.dir, "out2", "single.txt")), "single");
});

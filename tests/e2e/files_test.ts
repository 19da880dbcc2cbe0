/**
 * End-to-end tests of the file store through the real server and the real CLI: put, get,
 * ls, mkdir, mv, rm, df, quotas, concurrency and fsck (SPEC section 6).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { e2eTest, type Fixture, GOOD_PASSWORD } from "./_harness.ts";
import {
  exists,
  type LsEntry,
  makeFile,
  namesOf,
  parseLs,
  sha256File,
  tmpFiles,
  writeFile,
} from "./_files.ts";

const ADA = "ada@example.com";
const BOB = "bob@example.com";
const BOB_PASSWORD = "Bobs-Long-Password-77";
const KIB = 1024;
const MIB = 1024 * 1024;

/** Registers Ada and returns a runner of her CLI commands. */
async function ada(f: Fixture) {
  const reg = await f.register(ADA, GOOD_PASSWORD);
  assert.equal(reg.code, 0, reg.stderr);
  return (...args: string[]) => f.as(ADA, GOOD_PASSWORD, args);
}

async function ls(run: (...args: string[]) => ReturnType<Fixture["as"]>, dir?: string) {
  return parseLs(await run("ls", ...(dir === undefined ? [] : [dir]), "--json"));
}

function entry(entries: LsEntry[], name: string): LsEntry {
  const found = entries.find((e) => e.name === name);
  assert.ok(found, `no entry "${name}" in ${JSON.stringify(entries)}`);
  return found;
}

async function assertEntryMatches(e: LsEntry, local: string) {
  const info = await Deno.stat(local);
  assert.equal(e.type, "file");
  assert.equal(e.size, info.size, e.name);
  assert.equal(e.sha256, await sha256File(local), e.name);
  assert.equal(typeof e.modified, "number");
  // The client sends the local modification time and the server keeps it.
  assert.ok(
    Math.abs(e.modified - info.mtime!.getTime()) < 1000,
    `${e.name}: modified ${e.modified} vs local ${info.mtime!.getTime()}`,
  );
}

e2eTest(
  "put files and a folder, ls --json describes them, get returns the same bytes",
  async (f) => {
    const run = await ada(f);
    const src = join(f.dir, "src");
    const a = await writeFile(join(src, "a.txt"), "hello, cloud\n");
    const b = await makeFile(join(src, "b.bin"), 100 * KIB);
    const c = await makeFile(join(src, "c.bin"), 2 * MIB + 7); // resumable path
    const treeFiles = {
      "x.txt": await writeFile(join(src, "tree", "x.txt"), "x marks the spot"),
      "empty.txt": await writeFile(join(src, "tree", "empty.txt"), ""),
      "sub/y.bin": await makeFile(join(src, "tree", "sub", "y.bin"), 300 * KIB),
      "sub/deeper/z.bin": await makeFile(join(src, "tree", "sub", "deeper", "z.bin"), 1 * MIB + 1),
    };

    const put = await run("put", a.path, b.path, c.path, join(src, "tree"));
    assert.equal(put.code, 0, put.stderr);

    const root = await ls(run);
    assert.deepEqual(namesOf(root), ["a.txt", "b.bin", "c.bin", "tree"]);
    for (const e of root) {
      assert.deepEqual(Object.keys(e).sort(), ["modified", "name", "sha256", "size", "type"]);
    }
    await assertEntryMatches(entry(root, "a.txt"), a.path);
    await assertEntryMatches(entry(root, "b.bin"), b.path);
    await assertEntryMatches(entry(root, "c.bin"), c.path);
    const folder = entry(root, "tree");
    assert.equal(folder.type, "dir");
    assert.equal(folder.sha256, null);
    assert.equal(typeof folder.modified, "number");

    // The folder's structure is kept.
    assert.deepEqual(namesOf(await ls(run, "tree")), ["empty.txt", "sub", "x.txt"]);
    assert.deepEqual(namesOf(await ls(run, "tree/sub")), ["deeper", "y.bin"]);
    for (const [rel, made] of Object.entries(treeFiles)) {
      const parent = rel.includes("/") ? `tree/${rel.slice(0, rel.lastIndexOf("/"))}` : "tree";
      await assertEntryMatches(entry(await ls(run, parent), rel.split("/").pop()!), made.path);
    }

    // Everything comes back byte for byte.
    const out = join(f.dir, "out");
    await Deno.mkdir(out);
    const get = await run(
      "get",
      "a.txt",
      "b.bin",
      "c.bin",
      "tree/x.txt",
      "tree/empty.txt",
      "tree/sub/y.bin",
      "tree/sub/deeper/z.bin",
      "--out",
      out,
    );
    assert.equal(get.code, 0, get.stderr);
    assert.deepEqual(await Deno.readFile(join(out, "a.txt")), await Deno.readFile(a.path));
    for (const made of [b, c, ...Object.values(treeFiles)]) {
      const name = made.path.split("/").pop()!;
      assert.equal(await sha256File(join(out, name)), made.sha256, name);
      assert.equal((await Deno.stat(join(out, name))).size, made.size, name);
    }
    // No hidden partial files are left behind.
    const leftovers = [];
    for await (const e of Deno.readDir(out)) if (e.name.startsWith(".")) leftovers.push(e.name);
    assert.deepEqual(leftovers, []);

    // get never overwrites a local file unless asked.
    await Deno.writeTextFile(join(out, "a.txt"), "local edits");
    const refused = await run("get", "a.txt", "--out", out);
    assert.equal(refused.code, 6, refused.stderr);
    assert.equal(await Deno.readTextFile(join(out, "a.txt")), "local edits");
    const hidden = [...Deno.readDirSync(out)].filter((e) => e.name.startsWith("."));
    assert.deepEqual(hidden, [], "a refused get downloads nothing");
    const forced = await run("get", "a.txt", "--out", out, "--overwrite");
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(await Deno.readTextFile(join(out, "a.txt")), "hello, cloud\n");
  },
);

e2eTest("put onto an existing name needs --overwrite (exit 6, old content intact)", async (f) => {
  const run = await ada(f);
  const v1 = join(f.dir, "v1");
  const v2 = join(f.dir, "v2");
  const small1 = await writeFile(join(v1, "note.txt"), "first version");
  const big1 = await makeFile(join(v1, "big.bin"), 3 * MIB);
  const small2 = await writeFile(join(v2, "note.txt"), "second, longer version");
  const big2 = await makeFile(join(v2, "big.bin"), 3 * MIB + 5);
  assert.equal((await run("put", small1.path, big1.path)).code, 0);

  const refused = await run("put", small2.path, big2.path);
  assert.equal(refused.code, 6, refused.stderr);
  let listing = await ls(run);
  assert.equal(entry(listing, "note.txt").sha256, small1.sha256);
  assert.equal(entry(listing, "big.bin").sha256, big1.sha256);
  const out = join(f.dir, "out");
  await Deno.mkdir(out);
  assert.equal((await run("get", "note.txt", "big.bin", "--out", out)).code, 0);
  assert.equal(await sha256File(join(out, "note.txt")), small1.sha256);
  assert.equal(await sha256File(join(out, "big.bin")), big1.sha256);
  assert.deepEqual(await tmpFiles(f.server.dataDir), [], "nothing left in tmp");

  const replaced = await run("put", small2.path, big2.path, "--overwrite");
  assert.equal(replaced.code, 0, replaced.stderr);
  listing = await ls(run);
  assert.equal(entry(listing, "note.txt").sha256, small2.sha256);
  assert.equal(entry(listing, "big.bin").sha256, big2.sha256);
  assert.equal(entry(listing, "big.bin").size, big2.size);
  assert.equal(
    (await run("get", "note.txt", "big.bin", "--out", out, "--overwrite")).code,
    0,
  );
  assert.equal(await sha256File(join(out, "note.txt")), small2.sha256);
  assert.equal(await sha256File(join(out, "big.bin")), big2.sha256);
});

e2eTest("mkdir, mv, rm and df behave like their shell namesakes", async (f) => {
  const run = await ada(f);
  const src = join(f.dir, "src");
  const a = await writeFile(join(src, "a.txt"), "alpha");
  const b = await writeFile(join(src, "b.txt"), "bravo!");
  const c = await makeFile(join(src, "c.bin"), 10 * KIB);

  // mkdir: exists -> 6; missing parent -> 5; -p makes parents and accepts an existing one.
  assert.equal((await run("mkdir", "docs")).code, 0);
  const again = await run("mkdir", "docs");
  assert.equal(again.code, 6, again.stderr);
  assert.equal((await run("mkdir", "x/y")).code, 5);
  assert.equal((await run("mkdir", "-p", "docs/2024/q1")).code, 0);
  assert.equal((await run("mkdir", "-p", "docs")).code, 0);
  assert.equal(entry(await ls(run), "docs").type, "dir");
  assert.deepEqual(namesOf(await ls(run, "docs/2024")), ["q1"]);

  assert.equal((await run("put", a.path, b.path, c.path)).code, 0);
  assert.equal((await run("put", a.path, "--to", "docs/2024/q1")).code, 0);

  // mv a file into a folder and rename it; its record (sha256) moves with it.
  assert.equal((await run("mv", "a.txt", "docs/alpha.txt")).code, 0);
  assert.deepEqual(namesOf(await ls(run)), ["b.txt", "c.bin", "docs"]);
  assert.equal(entry(await ls(run, "docs"), "alpha.txt").sha256, a.sha256);

  // mv a folder; its contents follow.
  assert.equal((await run("mv", "docs/2024", "archive")).code, 0);
  assert.deepEqual(namesOf(await ls(run, "docs")), ["alpha.txt"]);
  assert.equal(entry(await ls(run, "archive/q1"), "a.txt").sha256, a.sha256);

  // mv onto an existing name: 6 without --overwrite, nothing changes; with it, replaced.
  const onto = await run("mv", "b.txt", "docs/alpha.txt");
  assert.equal(onto.code, 6, onto.stderr);
  assert.equal(entry(await ls(run), "b.txt").sha256, b.sha256);
  assert.equal(entry(await ls(run, "docs"), "alpha.txt").sha256, a.sha256);
  assert.equal((await run("mv", "b.txt", "docs/alpha.txt", "--overwrite")).code, 0);
  assert.equal(entry(await ls(run, "docs"), "alpha.txt").sha256, b.sha256);
  assert.ok(!namesOf(await ls(run)).includes("b.txt"));

  // mv a folder into itself is refused and changes nothing.
  const into = await run("mv", "archive", "archive/q1/inner");
  assert.notEqual(into.code, 0);
  assert.equal(into.code, 2, into.stderr);
  assert.deepEqual(namesOf(await ls(run, "archive")), ["q1"]);
  assert.deepEqual(namesOf(await ls(run, "archive/q1")), ["a.txt"]);
  // mv of a missing source: 5.
  assert.equal((await run("mv", "nothing.txt", "else.txt")).code, 5);

  // rm: missing -> 5; non-empty folder without -r -> refused, nothing removed; -r -> gone.
  const missing = await run("rm", "nothing.txt");
  assert.equal(missing.code, 5, missing.stderr);
  const notEmpty = await run("rm", "archive");
  assert.notEqual(notEmpty.code, 0);
  assert.deepEqual(namesOf(await ls(run, "archive/q1")), ["a.txt"]);
  assert.equal((await run("rm", "-r", "archive")).code, 0);
  assert.deepEqual(namesOf(await ls(run)), ["c.bin", "docs"]);
  assert.equal((await run("ls", "archive")).code, 5);
  assert.equal((await run("rm", "c.bin")).code, 0);
  assert.deepEqual(namesOf(await ls(run)), ["docs"]);
  // An empty folder goes without -r.
  assert.equal((await run("mkdir", "empty")).code, 0);
  assert.equal((await run("rm", "empty")).code, 0);

  // df counts what is left: docs/alpha.txt (b's bytes).
  const df = await run("df", "--json");
  assert.equal(df.code, 0, df.stderr);
  const usage = JSON.parse(df.stdout);
  assert.equal(usage.used, b.size);
  assert.equal(usage.files, 1);
  assert.equal(usage.quota, null);
  const plain = await run("df");
  assert.equal(plain.code, 0);
  assert.match(plain.stdout, /unlimited/);
});

e2eTest("the quota refuses the upload that would pass it; admin quota raises it", async (f) => {
  const run = await ada(f);
  const src = join(f.dir, "src");
  const files = [];
  for (let i = 0; i < 3; i++) files.push(await makeFile(join(src, `f${i}.bin`), 20 * KIB));
  const exact = await makeFile(join(src, "exact.bin"), 4 * KIB); // 64 KiB in all
  const over = await makeFile(join(src, "over.bin"), 1); // one byte past the quota
  const big = await makeFile(join(src, "big.bin"), 2 * MIB); // resumable, over even 1 MiB

  assert.equal((await run("put", ...files.map((x) => x.path))).code, 0);
  assert.equal((await run("put", exact.path)).code, 0);
  let df = JSON.parse((await run("df", "--json")).stdout);
  assert.deepEqual([df.used, df.quota, df.files], [64 * KIB, 64 * KIB, 4]);

  const refused = await run("put", over.path);
  assert.equal(refused.code, 7, refused.stderr);
  assert.match(refused.stderr, /quota/i);
  assert.ok(!namesOf(await ls(run)).includes("over.bin"));
  df = JSON.parse((await run("df", "--json")).stdout);
  assert.deepEqual([df.used, df.files], [64 * KIB, 4]);
  // Overwriting with a smaller version fits: the old bytes are given back.
  const smaller = await makeFile(join(f.dir, "other", "f0.bin"), 10 * KIB);
  assert.equal((await run("put", smaller.path, "--overwrite")).code, 0);
  assert.equal(JSON.parse((await run("df", "--json")).stdout).used, 54 * KIB);

  const raise = await f.admin(["quota", ADA, "1MiB"]);
  assert.equal(raise.code, 0, raise.stderr);
  assert.equal((await run("put", over.path)).code, 0);
  df = JSON.parse((await run("df", "--json")).stdout);
  assert.equal(df.quota, MIB);
  assert.equal(df.used, 54 * KIB + 1);

  // A resumable upload over the quota is refused before any byte and leaves nothing.
  const tooBig = await run("put", big.path);
  assert.equal(tooBig.code, 7, tooBig.stderr);
  assert.ok(!namesOf(await ls(run)).includes("big.bin"));
  assert.deepEqual(await tmpFiles(f.server.dataDir), []);
}, ["--quota", "64KiB"]);

e2eTest("--max-file-size refuses a larger file (exit 7) whatever the quota", async (f) => {
  const run = await ada(f);
  const fits = await makeFile(join(f.dir, "fits.bin"), 16 * KIB);
  const tooLarge = await makeFile(join(f.dir, "large.bin"), 20 * KIB);
  assert.equal((await run("put", fits.path)).code, 0);
  const refused = await run("put", tooLarge.path);
  assert.equal(refused.code, 7, refused.stderr);
  assert.deepEqual(namesOf(await ls(run)), ["fits.bin"]);
  const df = JSON.parse((await run("df", "--json")).stdout);
  assert.equal(df.maxFileSize, 16 * KIB);
  assert.equal(df.quota, 10 * MIB);
}, ["--max-file-size", "16KiB", "--quota", "10MiB"]);

e2eTest(
  "concurrent uploads: one name twice ends with one whole version; others all succeed",
  async (f) => {
    const run = await ada(f);
    const one = await makeFile(join(f.dir, "one", "same.bin"), 8 * MIB);
    const two = await makeFile(join(f.dir, "two", "same.bin"), 8 * MIB);
    const results = await Promise.all([
      run("put", one.path, "--overwrite"),
      run("put", two.path, "--overwrite"),
    ]);
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const listing = await ls(run);
    assert.deepEqual(namesOf(listing), ["same.bin"]);
    const recorded = entry(listing, "same.bin").sha256;
    const out = join(f.dir, "out");
    await Deno.mkdir(out);
    assert.equal((await run("get", "same.bin", "--out", out)).code, 0);
    const got = await sha256File(join(out, "same.bin"));
    assert.ok(got === one.sha256 || got === two.sha256, "the file is one of the two uploads");
    assert.equal(recorded, got, "the recorded SHA-256 is that of the bytes stored");

    // Four clients at once, two users, each user on two connections.
    assert.equal((await f.register(BOB, BOB_PASSWORD)).code, 0);
    const made = [];
    for (let i = 0; i < 4; i++) {
      made.push(
        await makeFile(join(f.dir, "many", `m${i}.bin`), 3 * MIB),
      );
    }
    const uploads = await Promise.all(
      made.map((m, i) =>
        i < 2
          ? f.as(ADA, GOOD_PASSWORD, ["put", m.path])
          : f.as(BOB, BOB_PASSWORD, ["put", m.path, "--to", "inbox"])
      ),
    );
    for (const r of uploads) {
      assert.equal(r.code, 0, r.stderr);
    }
    const adaFiles = await ls(run);
    assert.equal(entry(adaFiles, "m0.bin").sha256, made[0]!.sha256);
    assert.equal(entry(adaFiles, "m1.bin").sha256, made[1]!.sha256);
    const bobFiles = parseLs(await f.as(BOB, BOB_PASSWORD, ["ls", "inbox", "--json"]));
    assert.deepEqual(namesOf(bobFiles), ["m2.bin", "m3.bin"]);
    assert.equal(entry(bobFiles, "m2.bin").sha256, made[2]!.sha256);
    assert.equal(entry(bobFiles, "m3.bin").sha256, made[3]!.sha256);

    const fsck = await f.admin(["fsck"]);
    assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    assert.deepEqual(await tmpFiles(f.server.dataDir), []);
  },
);

e2eTest(
  "fsck names a stray file, a missing file and a corrupt file; --repair fixes them",
  async (f) => {
    const run = await ada(f);
    const src = join(f.dir, "src");
    const keep = await writeFile(join(src, "keep.txt"), "keep me");
    const gone = await writeFile(join(src, "gone.txt"), "I will vanish");
    const bad = await writeFile(join(src, "bad.txt"), "I will be corrupted");
    assert.equal((await run("put", keep.path, gone.path, bad.path)).code, 0);
    const clean = await f.admin(["fsck"]);
    assert.equal(clean.code, 0, clean.stdout);

    const me = JSON.parse((await run("whoami", "--json")).stdout);
    const userDir = join(f.server.dataDir, "users", String(me.id));
    await Deno.writeTextFile(join(userDir, "stray.txt"), "nobody recorded me");
    await Deno.remove(join(userDir, "gone.txt"));
    await Deno.writeTextFile(join(userDir, "bad.txt"), "I was corrupted!!!!"); // same length

    const found = await f.admin(["fsck"]);
    assert.notEqual(found.code, 0, found.stdout);
    const report = found.stdout + found.stderr;
    for (const name of ["stray.txt", "gone.txt", "bad.txt"]) {
      assert.match(report, new RegExp(name.replace(".", "\\.")), report);
    }
    assert.doesNotMatch(report, /keep\.txt/);

    const repair = await f.admin(["fsck", "--repair"]);
    // Like e2fsck, a run that found (and fixed) problems does not exit 0; it says what it did.
    assert.match(repair.stdout, /3 problems, 3 repaired/, repair.stdout + repair.stderr);
    const after = await f.admin(["fsck"]);
    assert.equal(after.code, 0, after.stdout + after.stderr);
    // The user sees what is on disk, with checksums that match it; the corrupt file is
    // never blessed: it is moved to the quarantine for the administrator.
    const listing = await ls(run);
    assert.deepEqual(namesOf(listing), ["keep.txt", "stray.txt"]);
    assert.equal(entry(listing, "stray.txt").sha256, await sha256File(join(userDir, "stray.txt")));
    assert.equal(await exists(join(userDir, "gone.txt")), false);
    assert.equal(await exists(join(userDir, "bad.txt")), false);
    const moved = /moved to (\S+),/.exec(repair.stdout)?.[1];
    assert.ok(moved?.startsWith(join(f.server.dataDir, "quarantine")), repair.stdout);
    assert.equal(await Deno.readTextFile(moved!), "I was corrupted!!!!");
    assert.equal(JSON.parse((await run("df", "--json")).stdout).files, 2);
  },
);

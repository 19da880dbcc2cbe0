/**
 * End-to-end tests of names and isolation (SPEC section 6): one user can never reach
 * another's files, and every bad name class is refused with E_BAD_NAME by every file
 * operation without creating anything anywhere.
 */

import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { e2eTest, type Fixture, GOOD_PASSWORD } from "./_harness.ts";
import {
  exists,
  makeFile,
  namesOf,
  parseLs,
  RawClient,
  sha256File,
  sha256Of,
  tree,
  type TreeEntry,
  writeFile,
} from "./_files.ts";

const ADA = "ada@example.com";
const BOB = "bob@example.com";
const BOB_PASSWORD = "Bobs-Long-Password-77";

/** Registers over the raw protocol; asserts success. */
async function registerRaw(f: Fixture, email: string, password: string) {
  const raw = await RawClient.open(f.server);
  const ok = await raw.request({
    t: "register",
    email,
    password,
    name: "Test User",
    phone: "+1 555 0100",
  });
  assert.equal(ok.t, "ok", JSON.stringify(ok));
  raw.close();
}

/** What the data folder may hold at its top level. */
function assertDataLayout(entries: TreeEntry[], userIds: number[]) {
  for (const e of entries) {
    const [top, second] = e.path.split("/");
    const allowed = top === "users" || top === "tmp" || top === "tls" ||
      /^cloud\.db(-wal|-shm|-journal)?$/.test(top!);
    assert.ok(allowed, `unexpected "${e.path}" in the data folder`);
    if ((top === "users" || top === "tmp") && second !== undefined) {
      assert.ok(userIds.map(String).includes(second), `unexpected "${e.path}"`);
    }
    assert.notEqual(e.type, "link", `a link "${e.path}" in the data folder`);
  }
}

/** Snapshot of a data folder without the database files (they change with every login). */
async function filesTree(dataDir: string): Promise<TreeEntry[]> {
  return (await tree(dataDir)).filter((e) => !/^cloud\.db/.test(e.path));
}

e2eTest(
  "every file operation refuses every bad name class (E_BAD_NAME) and creates nothing",
  async (f) => {
    await registerRaw(f, ADA, GOOD_PASSWORD);
    await registerRaw(f, BOB, BOB_PASSWORD);
    const raw = await RawClient.login(f.server, ADA, GOOD_PASSWORD);
    const me = await raw.request({ t: "whoami" });
    const adaId = me.id as number;
    const bob = await RawClient.login(f.server, BOB, BOB_PASSWORD);
    const bobId = (await bob.request({ t: "whoami" })).id as number;
    const secret = new TextEncoder().encode("bob's secret");
    assert.equal((await bob.putInline("secret.txt", secret)).t, "ok");
    bob.close();

    // Ada's own content, to move and to check afterwards.
    const keep = new TextEncoder().encode("keep me");
    assert.equal((await raw.putInline("keep.txt", keep)).t, "ok");
    assert.equal((await raw.request({ t: "mkdir", path: "dir", parents: false })).t, "ok");

    const token = `escape-${crypto.randomUUID().slice(0, 8)}`;
    const badNames: [string, string][] = [
      ["dot-dot", ".."],
      ["dot-dot inside", `a/../../${token}`],
      ["dot-dot to another user", `../${bobId}/secret.txt`],
      ["dot-dot twice", `../../${token}`],
      ["absolute", "/etc/passwd"],
      ["absolute into /tmp", `/tmp/${token}`],
      ["backslash", "a\\b"],
      ["backslash dot-dot", `..\\${token}`],
      ["NUL", "a\u0000b"],
      ["control byte", "a\u0001b"],
      ["escape", "a\u001b[31mred"],
      ["C1 control", "a\u0085b"],
      ["256-byte segment", "x".repeat(256)],
      ["256-byte segment (multi-byte)", "é".repeat(128)],
      ["not NFC", "e\u0301"],
      ["empty segment", "a//b"],
      ["single dot", "./keep.txt"],
    ];
    const body = new TextEncoder().encode("payload that must not land anywhere");
    const before = await filesTree(f.server.dataDir);
    const cwdBefore = await exists(resolve(`../${token}`));
    assert.equal(cwdBefore, false);

    for (const [label, name] of badNames) {
      const requests: [string, Record<string, unknown>, Uint8Array?][] = [
        ["ls", { t: "ls", path: name }],
        ["put inline", {
          t: "put",
          path: name,
          size: body.length,
          sha256: sha256Of(body),
          overwrite: true,
          mode: "inline",
        }, body],
        ["put resumable", {
          t: "put",
          path: name,
          size: 5 * 1024 * 1024,
          sha256: "0".repeat(64),
          overwrite: true,
          mode: "resumable",
        }],
        ["get", { t: "get", path: name, offset: 0 }],
        ["rm", { t: "rm", path: name, recursive: true }],
        ["mv from", { t: "mv", from: name, to: "moved.txt", overwrite: true }],
        ["mv to", { t: "mv", from: "keep.txt", to: name, overwrite: true }],
        ["mv folder to", { t: "mv", from: "dir", to: name, overwrite: true }],
        ["mkdir", { t: "mkdir", path: name, parents: false }],
        ["mkdir -p", { t: "mkdir", path: name, parents: true }],
      ];
      for (const [op, request, payload] of requests) {
        const answer = await raw.request(request, payload);
        assert.equal(answer.t, "error", `${op} ${label}: ${JSON.stringify(answer)}`);
        assert.equal(answer.code, "E_BAD_NAME", `${op} ${label}: ${String(answer.message)}`);
        assert.ok(String(answer.message).length > 0);
      }
      // The connection is still usable after each class.
      const listing = await raw.request({ t: "ls", path: "" });
      assert.equal(listing.t, "ok", `${label}: ${JSON.stringify(listing)}`);
    }

    // Nothing was created, moved or removed anywhere.
    const after = await filesTree(f.server.dataDir);
    assert.deepEqual(after, before);
    assertDataLayout(await tree(f.server.dataDir), [adaId, bobId]);
    for (
      const place of [
        join(f.server.dataDir, token),
        join(f.server.dataDir, "..", token),
        join(f.server.dataDir, "users", token),
        join("/tmp", token),
        resolve(`../${token}`),
        resolve(token),
      ]
    ) {
      assert.equal(await exists(place), false, `${place} was created`);
    }
    const listing = await raw.request({ t: "ls", path: "" });
    assert.deepEqual(
      (listing.entries as { name: string }[]).map((e) => e.name).sort(),
      ["dir", "keep.txt"],
    );
    const got = await raw.get("keep.txt");
    assert.deepEqual(got.bytes, keep);
    raw.close();
    const bobAgain = await RawClient.login(f.server, BOB, BOB_PASSWORD);
    assert.deepEqual((await bobAgain.get("secret.txt")).bytes, secret);
    bobAgain.close();
    assert.ok(!f.server.lines.some((l) => /internal_error/.test(l)), f.server.lines.join("\n"));
  },
);

e2eTest("one user cannot list, get, rm, mv or overwrite another's files by any name", async (f) => {
  assert.equal((await f.register(ADA, GOOD_PASSWORD)).code, 0);
  assert.equal((await f.register(BOB, BOB_PASSWORD)).code, 0);
  const asAda = (...args: string[]) => f.as(ADA, GOOD_PASSWORD, args);
  const asBob = (...args: string[]) => f.as(BOB, BOB_PASSWORD, args);
  const adaDir = join(f.dir, "ada");
  const secret = await writeFile(join(adaDir, "secret.txt"), "Ada's secret");
  const inner = await makeFile(join(adaDir, "docs", "inner.bin"), 2 * 1024 * 1024);
  assert.equal((await asAda("put", secret.path, join(adaDir, "docs"))).code, 0);
  const adaId = JSON.parse((await asAda("whoami", "--json")).stdout).id as number;
  const adaRoot = join(f.server.dataDir, "users", String(adaId));
  const adaBefore = await tree(adaRoot);

  // Bob sees an empty root, and none of Ada's names resolve for him.
  assert.deepEqual(parseLs(await asBob("ls", "--json")), []);
  const names = [
    "secret.txt",
    "docs/inner.bin",
    `../${adaId}/secret.txt`,
    `../../users/${adaId}/secret.txt`,
    `users/${adaId}/secret.txt`,
    `/${adaId}/secret.txt`,
    join(adaRoot, "secret.txt"),
  ];
  const out = join(f.dir, "bob-out");
  await Deno.mkdir(out);
  for (const name of names) {
    const get = await asBob("get", name, "--out", out);
    assert.ok([2, 5].includes(get.code), `get ${name}: ${get.code} ${get.stderr}`);
    const rm = await asBob("rm", "-r", name);
    assert.ok([2, 5].includes(rm.code), `rm ${name}: ${rm.code} ${rm.stderr}`);
    const mv = await asBob("mv", name, "mine.txt");
    assert.ok([2, 5].includes(mv.code), `mv ${name}: ${mv.code} ${mv.stderr}`);
  }
  for (const dir of ["docs", `../${adaId}`, `users/${adaId}`, adaRoot, `../${adaId}/docs`]) {
    const list = await asBob("ls", dir, "--json");
    assert.ok([2, 5].includes(list.code), `ls ${dir}: ${list.code} ${list.stderr}`);
    assert.equal(list.stdout, "");
  }
  assert.deepEqual([...Deno.readDirSync(out)], [], "Bob got nothing");

  // Bob's uploads by any name land in his own root or are refused; Ada's files stay.
  const bobDir = join(f.dir, "bob");
  const bobSecret = await writeFile(join(bobDir, "secret.txt"), "Bob overwrote it");
  for (const to of [`../${adaId}`, `../../users/${adaId}`, `..`]) {
    const put = await asBob("put", bobSecret.path, "--to", to, "--overwrite");
    assert.equal(put.code, 2, `put --to ${to}: ${put.stderr}`);
  }
  assert.equal((await asBob("mkdir", "-p", `../${adaId}/x`)).code, 2);
  assert.equal((await asBob("mv", "nothing", `../${adaId}/secret.txt`)).code, 2);
  // These names are valid, so they mean Bob's own files.
  assert.equal((await asBob("put", bobSecret.path, "--overwrite")).code, 0);
  assert.equal((await asBob("put", bobSecret.path, "--to", `users/${adaId}`)).code, 0);
  assert.deepEqual(namesOf(parseLs(await asBob("ls", "--json"))), ["secret.txt", "users"]);
  assert.deepEqual(namesOf(parseLs(await asBob("ls", `users/${adaId}`, "--json"))), [
    "secret.txt",
  ]);

  // Ada's files are untouched: same tree on disk, same listing, same bytes.
  assert.deepEqual(await tree(adaRoot), adaBefore);
  assert.deepEqual(namesOf(parseLs(await asAda("ls", "--json"))), ["docs", "secret.txt"]);
  const adaOut = join(f.dir, "ada-out");
  await Deno.mkdir(adaOut);
  assert.equal((await asAda("get", "secret.txt", "docs/inner.bin", "--out", adaOut)).code, 0);
  assert.equal(await sha256File(join(adaOut, "secret.txt")), secret.sha256);
  assert.equal(await sha256File(join(adaOut, "inner.bin")), inner.sha256);
  // And Bob's own file is his.
  assert.equal((await asBob("get", "secret.txt", "--out", out)).code, 0);
  assert.equal(await sha256File(join(out, "secret.txt")), bobSecret.sha256);
});

e2eTest("unusual but valid names round-trip byte for byte through put, ls and get", async (f) => {
  assert.equal((await f.register(ADA, GOOD_PASSWORD)).code, 0);
  const run = (...args: string[]) => f.as(ADA, GOOD_PASSWORD, args);
  const names = [
    "café.txt", // NFC
    "日本語のファイル.txt",
    ".hidden",
    "with  inner spaces.txt",
    'odd:chars*?"<>|.txt',
    "emoji-🎉.bin",
    `${"é".repeat(126)}abc`, // 255 bytes: the longest segment allowed
    "x".repeat(255),
  ];
  const src = join(f.dir, "src", "box");
  const made = new Map<string, string>();
  for (const name of names) {
    made.set(name, (await writeFile(join(src, name), `content of ${name}`)).sha256);
  }
  const put = await run("put", src);
  assert.equal(put.code, 0, put.stderr);
  const listing = parseLs(await run("ls", "box", "--json"));
  assert.deepEqual(namesOf(listing), [...names].sort());
  for (const e of listing) assert.equal(e.sha256, made.get(e.name), e.name);
  const out = join(f.dir, "out");
  await Deno.mkdir(out);
  const get = await run("get", ...names.map((n) => `box/${n}`), "--out", out);
  assert.equal(get.code, 0, get.stderr);
  for (const name of names) assert.equal(await sha256File(join(out, name)), made.get(name), name);
});

e2eTest("ls lists a folder too large for one frame, every entry once", async (f) => {
  assert.equal((await f.register(ADA, GOOD_PASSWORD)).code, 0);
  const src = join(f.dir, "src", "many");
  await Deno.mkdir(src, { recursive: true });
  const expected: string[] = [];
  for (let i = 0; i < 400; i++) {
    const name = `${"n".repeat(200)}-${String(i).padStart(4, "0")}.txt`;
    expected.push(name);
    await Deno.writeTextFile(join(src, name), String(i));
  }
  const put = await f.as(ADA, GOOD_PASSWORD, ["put", src]);
  assert.equal(put.code, 0, put.stderr);
  const listing = parseLs(await f.as(ADA, GOOD_PASSWORD, ["ls", "many", "--json"]));
  assert.ok(JSON.stringify(listing).length > 64 * 1024, "more than one frame's worth");
  assert.deepEqual(listing.map((e) => e.name).sort(), expected.sort());
  const df = JSON.parse((await f.as(ADA, GOOD_PASSWORD, ["df", "--json"])).stdout);
  assert.equal(df.files, 400);
});

/**
 * End-to-end tests of the file store when things go wrong (SPEC section 6): wrong hashes,
 * clients and servers killed mid-transfer, a full disk, stale temporaries at start.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { backends, e2eTest, Fixture, GOOD_PASSWORD, ServerProcess } from "./_harness.ts";
import {
  asAt,
  exists,
  largestPartial,
  makeFile,
  namesOf,
  parseLs,
  randomBytes,
  RawClient,
  sha256File,
  sha256Of,
  sizeOrNull,
  spawnCloud,
  tmpFiles,
  waitFor,
} from "./_files.ts";

const ADA = "ada@example.com";
const KIB = 1024;
const MIB = 1024 * 1024;
/** Big enough that a transfer over loopback takes a second or more. */
const BIG = 300 * MIB;

async function registerAda(f: Fixture) {
  const reg = await f.register(ADA, GOOD_PASSWORD);
  assert.equal(reg.code, 0, reg.stderr);
}

/** The byte offset a `Resumed "..." at byte N` line on stderr names (0 when none). */
function resumedAt(stderr: string): number {
  const match = /Resumed .* at byte (\d+)/.exec(stderr);
  return match ? Number(match[1]) : 0;
}

/** Waits for a child to end, killing it (by its handle) if it runs longer than `ms`. */
async function outputWithin(child: Deno.ChildProcess, ms: number): Promise<Deno.CommandOutput> {
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // It already ended.
    }
  }, ms);
  try {
    return await child.output();
  } finally {
    clearTimeout(timer);
  }
}

/** Kills a child with SIGKILL and asserts it died of it. */
async function kill9(child: Deno.ChildProcess): Promise<void> {
  child.kill("SIGKILL");
  const status = await outputWithin(child, 10_000);
  assert.equal(status.success, false);
  assert.equal(status.signal, "SIGKILL");
}

e2eTest(
  "a wrong declared SHA-256 is refused (E_INTEGRITY), leaving nothing and the old version",
  async (f) => {
    await registerAda(f);
    const raw = await RawClient.login(f.server, ADA, GOOD_PASSWORD);
    const small = randomBytes(1000);
    const big = randomBytes(3 * MIB);
    assert.equal((await raw.putInline("small.bin", small)).t, "ok");
    assert.equal((await raw.putResumable("big.bin", big)).t, "ok");

    const wrong = sha256Of("not these bytes");
    const otherSmall = randomBytes(2000);
    const otherBig = randomBytes(3 * MIB + 1);
    const attempts: [string, () => Promise<Record<string, unknown>>][] = [
      ["inline, new name", () => raw.putInline("new.bin", otherSmall, { sha256: wrong })],
      [
        "inline, overwrite",
        () => raw.putInline("small.bin", otherSmall, { sha256: wrong, overwrite: true }),
      ],
      ["resumable, new name", () => raw.putResumable("newbig.bin", otherBig, { sha256: wrong })],
      [
        "resumable, overwrite",
        () => raw.putResumable("big.bin", otherBig, { sha256: wrong, overwrite: true }),
      ],
      // The right hash of other bytes: a corrupted body, as a flipped bit in transit would be.
      ["inline, corrupted body", () => {
        const sent = otherSmall.slice();
        sent[7]! ^= 1;
        return raw.putInline("small.bin", sent, { sha256: sha256Of(otherSmall), overwrite: true });
      }],
    ];
    for (const [label, attempt] of attempts) {
      const answer = await attempt();
      assert.equal(answer.t, "error", `${label}: ${JSON.stringify(answer)}`);
      assert.equal(answer.code, "E_INTEGRITY", `${label}: ${String(answer.message)}`);
    }

    // Same connection: nothing new is visible and the previous versions are intact.
    const listing = await raw.request({ t: "ls", path: "" });
    assert.equal(listing.t, "ok");
    const entries = listing.entries as { name: string; sha256: string; size: number }[];
    assert.deepEqual(entries.map((e) => e.name).sort(), ["big.bin", "small.bin"]);
    assert.equal(entries.find((e) => e.name === "small.bin")!.sha256, sha256Of(small));
    assert.equal(entries.find((e) => e.name === "big.bin")!.sha256, sha256Of(big));
    assert.deepEqual((await raw.get("small.bin")).bytes, small);
    assert.equal(sha256Of((await raw.get("big.bin")).bytes), sha256Of(big));
    // No temporary or partial is kept for a mismatch, so nothing counts toward the quota.
    assert.deepEqual(await tmpFiles(f.server.dataDir), []);
    const df = await raw.request({ t: "df" });
    assert.equal(df.used, small.length + big.length);
    // A correct upload of the same content starts from 0 and works.
    const ready = await raw.request({
      t: "put",
      path: "big.bin",
      size: otherBig.length,
      sha256: sha256Of(otherBig),
      overwrite: true,
      mode: "resumable",
    });
    assert.deepEqual(ready, { t: "ready", offset: 0 });
    await raw.writer.writeBytes(otherBig);
    assert.equal((await raw.next()).t, "ok");
    raw.close();

    // Another client (the CLI, another process) is served as usual.
    const ls = parseLs(await f.as(ADA, GOOD_PASSWORD, ["ls", "--json"]));
    assert.equal(ls.find((e) => e.name === "big.bin")!.sha256, sha256Of(otherBig));
    assert.equal((await f.admin(["fsck"])).code, 0);
  },
);

e2eTest("a client killed mid-upload leaves nothing visible; put again resumes", async (f) => {
  await registerAda(f);
  const big = await makeFile(join(f.dir, "src", "big.bin"), BIG);
  const child = spawnCloud(f.server, f.configDir, ADA, GOOD_PASSWORD, ["put", big.path]);
  await waitFor(
    "a partial upload in <data>/tmp",
    async () => (await largestPartial(f.server.dataDir)) > 0,
  );
  await kill9(child);

  assert.deepEqual(parseLs(await f.as(ADA, GOOD_PASSWORD, ["ls", "--json"])), []);
  const held = await largestPartial(f.server.dataDir);
  assert.ok(held > 0 && held < big.size, `the server holds ${held} bytes`);

  const again = await f.as(ADA, GOOD_PASSWORD, ["put", big.path]);
  assert.equal(again.code, 0, again.stderr);
  const at = resumedAt(again.stderr);
  assert.ok(at > 0 && at < big.size, `resumed at ${at}: ${again.stderr}`);

  const listing = parseLs(await f.as(ADA, GOOD_PASSWORD, ["ls", "--json"]));
  assert.deepEqual(namesOf(listing), ["big.bin"]);
  assert.equal(listing[0]!.sha256, big.sha256);
  assert.deepEqual(await tmpFiles(f.server.dataDir), []);
  await Deno.remove(big.path);
  const out = join(f.dir, "out");
  await Deno.mkdir(out);
  const get = await f.as(ADA, GOOD_PASSWORD, ["get", "big.bin", "--out", out]);
  assert.equal(get.code, 0, get.stderr);
  assert.equal(await sha256File(join(out, "big.bin")), big.sha256);
});

e2eTest(
  "a server killed mid-overwrite keeps the old version; after a restart put resumes",
  async (f) => {
    await registerAda(f);
    const old = await makeFile(join(f.dir, "v1", "big.bin"), 2 * MIB);
    assert.equal((await f.as(ADA, GOOD_PASSWORD, ["put", old.path])).code, 0);
    const big = await makeFile(join(f.dir, "v2", "big.bin"), BIG);
    const child = spawnCloud(f.server, f.configDir, ADA, GOOD_PASSWORD, [
      "put",
      big.path,
      "--overwrite",
    ]);
    await waitFor(
      "a partial upload in <data>/tmp",
      async () => (await largestPartial(f.server.dataDir)) > 0,
    );
    await f.server.kill9();
    const client = await outputWithin(child, 30_000);
    assert.notEqual(client.code, 0, "the client noticed the server died");

    const restarted = await ServerProcess.start({
      dataDir: f.server.dataDir,
      dbUrl: f.server.dbUrl,
    });
    try {
      assert.equal(restarted.fingerprint, f.server.fingerprint, "same certificate");
      const run = (...args: string[]) => asAt(restarted, f.configDir, ADA, GOOD_PASSWORD, args);
      const before = parseLs(await run("ls", "--json"));
      assert.deepEqual(namesOf(before), ["big.bin"]);
      assert.equal(before[0]!.size, old.size);
      assert.equal(before[0]!.sha256, old.sha256);
      const out = join(f.dir, "out");
      await Deno.mkdir(out);
      assert.equal((await run("get", "big.bin", "--out", out)).code, 0);
      assert.equal(await sha256File(join(out, "big.bin")), old.sha256);
      assert.ok((await largestPartial(f.server.dataDir)) > 0, "the partial survived the restart");

      const again = await run("put", big.path, "--overwrite");
      assert.equal(again.code, 0, again.stderr);
      const at = resumedAt(again.stderr);
      assert.ok(at > 0 && at < big.size, `resumed at ${at}: ${again.stderr}`);
      const after = parseLs(await run("ls", "--json"));
      assert.equal(after[0]!.size, big.size);
      assert.equal(after[0]!.sha256, big.sha256);
      await Deno.remove(big.path);
      const got = await run("get", "big.bin", "--out", out, "--overwrite");
      assert.equal(got.code, 0, got.stderr);
      assert.equal(await sha256File(join(out, "big.bin")), big.sha256);
      assert.deepEqual(await tmpFiles(f.server.dataDir), []);
      const fsck = await f.admin(["fsck"]);
      assert.equal(fsck.code, 0, fsck.stdout + fsck.stderr);
    } finally {
      await restarted.stop();
    }
  },
);

e2eTest("a client killed mid-download resumes from its hidden partial file", async (f) => {
  await registerAda(f);
  const big = await makeFile(join(f.dir, "src", "big.bin"), BIG);
  assert.equal((await f.as(ADA, GOOD_PASSWORD, ["put", big.path])).code, 0);
  await Deno.remove(big.path);
  const out = join(f.dir, "out");
  await Deno.mkdir(out);
  const partial = join(out, ".big.bin.cloud-part");
  const child = spawnCloud(f.server, f.configDir, ADA, GOOD_PASSWORD, [
    "get",
    "big.bin",
    "--out",
    out,
  ]);
  await waitFor("a partial download", async () => ((await sizeOrNull(partial)) ?? 0) > 0);
  await kill9(child);
  assert.equal(await exists(join(out, "big.bin")), false, "nothing unverified in place");
  const held = (await sizeOrNull(partial)) ?? 0;
  assert.ok(held > 0 && held < big.size, `the partial holds ${held} bytes`);

  const again = await f.as(ADA, GOOD_PASSWORD, ["get", "big.bin", "--out", out]);
  assert.equal(again.code, 0, again.stderr);
  const at = resumedAt(again.stderr);
  assert.ok(at >= held && at < big.size, `resumed at ${at} (partial ${held}): ${again.stderr}`);
  assert.equal(await sha256File(join(out, "big.bin")), big.sha256);
  const left = [...Deno.readDirSync(out)].map((e) => e.name);
  assert.deepEqual(left, ["big.bin"], "no partial files left");
});

e2eTest(
  "temporaries older than 24 h are removed at start; young partial uploads stay resumable",
  async (f) => {
    await registerAda(f);
    const young = randomBytes(3 * MIB);
    const old = randomBytes(3 * MIB);
    const parts = async () =>
      (await tmpFiles(f.server.dataDir)).filter((e) => e.path.endsWith(".part"));
    for (
      const [i, [path, bytes]] of ([["young.bin", young], ["old.bin", old]] as const).entries()
    ) {
      const raw = await RawClient.login(f.server, ADA, GOOD_PASSWORD);
      const ready = await raw.putResumable(path, bytes, { sendBytes: MIB });
      assert.deepEqual(ready, { t: "ready", offset: 0 });
      // Drop the connection once the server holds the bytes sent (see the ignored test below).
      await waitFor(`the server to hold 1 MiB of ${path}`, async () => {
        const held = await parts();
        return held.length === i + 1 && held.every((p) => p.size === MIB);
      });
      await raw.close();
    }
    const partials = await parts();
    await waitFor(
      "the server to see both uploads cut short",
      () => f.server.lines.filter((l) => /protocol_error .*code=E_BAD_FRAME/.test(l)).length === 2,
    );
    // Which partial is which: its meta file names the path (storage_local.ts).
    const tmp = join(f.server.dataDir, "tmp");
    const byName = new Map<string, string>();
    for (const part of partials) {
      const meta = join(tmp, part.path.replace(/\.part$/, ".json"));
      byName.set(JSON.parse(await Deno.readTextFile(meta)).path, join(tmp, part.path));
    }
    const dayAndAHour = new Date(Date.now() - 25 * 3600_000);
    const oldPart = byName.get("old.bin")!;
    const youngPart = byName.get("young.bin")!;
    for (const file of [oldPart, oldPart.replace(/\.part$/, ".json")]) {
      await Deno.utime(file, dayAndAHour, dayAndAHour);
    }
    const staleTop = join(tmp, "stale-upload.tmp");
    const youngTop = join(tmp, "young-leftover.tmp");
    await Deno.writeTextFile(staleTop, "from a crash long ago");
    await Deno.utime(staleTop, dayAndAHour, dayAndAHour);
    await Deno.writeTextFile(youngTop, "from a crash just now");

    assert.equal(await f.server.stop(), 0);
    const restarted = await ServerProcess.start({
      dataDir: f.server.dataDir,
      dbUrl: f.server.dbUrl,
    });
    try {
      assert.equal(await exists(staleTop), false, "the old temporary is gone");
      assert.equal(await exists(oldPart), false, "the old partial is gone");
      assert.equal(await exists(oldPart.replace(/\.part$/, ".json")), false);
      assert.equal(await sizeOrNull(youngPart), MIB, "the young partial is kept");
      assert.equal(await exists(youngTop), true, "a young temporary is kept");

      const raw = await RawClient.login(restarted, ADA, GOOD_PASSWORD);
      const resumed = await raw.request({
        t: "put",
        path: "young.bin",
        size: young.length,
        sha256: sha256Of(young),
        overwrite: false,
        mode: "resumable",
      });
      assert.deepEqual(resumed, { t: "ready", offset: MIB });
      await raw.writer.writeBytes(young.subarray(MIB));
      assert.equal((await raw.next()).t, "ok");
      const fresh = await raw.request({
        t: "put",
        path: "old.bin",
        size: old.length,
        sha256: sha256Of(old),
        overwrite: false,
        mode: "resumable",
      });
      assert.deepEqual(fresh, { t: "ready", offset: 0 });
      await raw.writer.writeBytes(old);
      assert.equal((await raw.next()).t, "ok");
      assert.equal(sha256Of((await raw.get("young.bin")).bytes), sha256Of(young));
      assert.equal(sha256Of((await raw.get("old.bin")).bytes), sha256Of(old));
      raw.close();
    } finally {
      await restarted.stop();
    }
  },
);

// A client whose FIN arrives while the server applies backpressure (the bytes sent, then
// an immediate close) must be noticed at once, not after the stall watchdog.
for (const backend of backends()) {
  Deno.test({
    name: `a client that disconnects mid-upload ends its session at once [${backend.name}]`,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const f = await Fixture.start(backend);
      try {
        await registerAda(f);
        const raw = await RawClient.login(f.server, ADA, GOOD_PASSWORD);
        const bytes = randomBytes(3 * MIB);
        assert.deepEqual(await raw.putResumable("cut.bin", bytes, { sendBytes: MIB }), {
          t: "ready",
          offset: 0,
        });
        await raw.close();
        await waitFor(
          "the server to see the upload cut short",
          () => f.server.lines.some((l) => /protocol_error .*code=E_BAD_FRAME/.test(l)),
          {
            timeoutMs: 5000,
          },
        );
        const started = performance.now();
        assert.equal(await f.server.stop(), 0);
        assert.ok(performance.now() - started < 5000, "no session left to wait for");
      } finally {
        await f.close();
      }
    },
  });
}

/** Mounts a tmpfs of `size` at a new temp dir, or returns why it cannot. */
async function mountTmpfs(size: string): Promise<{ dir: string } | { why: string }> {
  if (Deno.build.os !== "linux") return { why: "tmpfs mounts need Linux" };
  if (Deno.uid() !== 0) return { why: "mounting a tmpfs needs root" };
  const dir = await Deno.makeTempDir({ prefix: "cloud-e2e-full-" });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir],
    stdout: "piped",
    stderr: "piped",
  }).output().catch((error) => ({
    success: false,
    stderr: new TextEncoder().encode(String(error)),
  }));
  if (!mount.success) {
    await Deno.remove(dir).catch(() => {});
    return { why: `mount -t tmpfs failed: ${new TextDecoder().decode(mount.stderr).trim()}` };
  }
  return { dir };
}

/** Bytes free on the file system holding `dir` (`df`). */
async function available(dir: string): Promise<number> {
  const df = await new Deno.Command("df", { args: ["-B1", "--output=avail", dir] }).output();
  assert.ok(df.success);
  return Number(new TextDecoder().decode(df.stdout).trim().split("\n").pop());
}

async function unmount(dir: string): Promise<void> {
  const result = await new Deno.Command("umount", { args: [dir], stderr: "piped" }).output();
  assert.ok(result.success, new TextDecoder().decode(result.stderr));
  await Deno.remove(dir);
}

// Probed once at load: whether this machine lets the test mount a small tmpfs.
const probe = await mountTmpfs("1m");
const diskFullSkip = "why" in probe ? probe.why : null;
if ("dir" in probe) await unmount(probe.dir);
if (diskFullSkip) console.log(`disk-full test skipped: ${diskFullSkip}`);

for (const backend of backends()) {
  Deno.test({
    name:
      `a full disk refuses an upload (exit 7), keeps the old version, and serves on [${backend.name}]`,
    ignore: diskFullSkip !== null,
    sanitizeResources: false,
    sanitizeOps: false,
    fn: async () => {
      const mounted = await mountTmpfs("24m");
      assert.ok("dir" in mounted, "why" in mounted ? mounted.why : "");
      const local = await Deno.makeTempDir({ prefix: "cloud-e2e-local-" });
      const db = await backend.create();
      let server: ServerProcess | null = null;
      try {
        // Room the host admin can free later, outside the data folder.
        const filler = await makeFile(join(mounted.dir, "filler.bin"), 6 * MIB);
        const dataDir = join(mounted.dir, "data");
        server = await ServerProcess.start({ dataDir, dbUrl: db.url });
        const configDir = join(local, "config");
        const s = server;
        const run = (...args: string[]) => asAt(s, configDir, ADA, GOOD_PASSWORD, args);
        const reg = await asAt(s, configDir, ADA, GOOD_PASSWORD, [
          "register",
          "--name",
          "Ada",
          "--phone",
          "5550100",
        ]);
        assert.equal(reg.code, 0, reg.stderr);
        const previous = await makeFile(join(local, "v1", "big.bin"), 2 * MIB);
        assert.equal((await run("put", previous.path)).code, 0);

        const huge = await makeFile(join(local, "v2", "big.bin"), 40 * MIB);
        const full = await run("put", huge.path, "--overwrite");
        assert.equal(full.code, 7, full.stderr);
        assert.match(full.stderr, /space/i);
        // A partial that hit a full disk is dropped (server/handlers/files.ts): kept, it
        // would hold the disk full, database included, until it expires. So the server
        // serves at once, the old version intact, and nothing is left in tmp.
        assert.deepEqual(await tmpFiles(dataDir), []);
        const listing = parseLs(await run("ls", "--json"));
        assert.deepEqual(namesOf(listing), ["big.bin"]);
        assert.equal(listing[0]!.sha256, previous.sha256);
        const out = join(local, "out");
        await Deno.mkdir(out);
        assert.equal((await run("get", "big.bin", "--out", out)).code, 0);
        assert.equal(await sha256File(join(out, "big.bin")), previous.sha256);
        const df = JSON.parse((await run("df", "--json")).stdout);
        assert.deepEqual([df.used, df.files], [previous.size, 1]);

        // A small (inline, plain temporary) upload onto an almost full disk: refused, and
        // no temporary left behind. Leave a little room for the database's own writes.
        const small = await makeFile(join(local, "small.bin"), 800 * KIB);
        const room = await available(mounted.dir);
        await makeFile(join(mounted.dir, "filler2.bin"), Math.max(0, room - 256 * KIB));
        const refused = await run("put", small.path);
        assert.equal(refused.code, 7, refused.stderr);
        assert.deepEqual(await tmpFiles(dataDir), []);
        assert.deepEqual(namesOf(parseLs(await run("ls", "--json"))), ["big.bin"]);

        // Once the host has room again the same server takes uploads.
        await Deno.remove(filler.path);
        await Deno.remove(join(mounted.dir, "filler2.bin"));
        const ok = await run("put", small.path);
        assert.equal(ok.code, 0, ok.stderr);
        assert.equal((await run("get", "small.bin", "--out", out)).code, 0);
        assert.equal(await sha256File(join(out, "small.bin")), small.sha256);
        assert.ok(!server.lines.some((l) => /internal_error/.test(l)), server.lines.join("\n"));
      } catch (error) {
        console.log(server?.lines.join("\n"));
        throw error;
      } finally {
        await server?.stop();
        await db.drop();
        await unmount(mounted.dir);
        await Deno.remove(local, { recursive: true });
      }
    },
  });
}

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { CloudError, type ErrorCode } from "../../protocol/errors.ts";
import type { Storage } from "../../server/storage.ts";
import { LocalStorage } from "../../server/storage_local.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Deterministic pseudo-random bytes. */
function bytesOf(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed * 2654435761 >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A stream of `bytes` in chunks (fresh copies), optionally erroring after `failAfter` bytes. */
function streamOf(
  bytes: Uint8Array,
  options: { chunk?: number; failAfter?: number } = {},
): ReadableStream<Uint8Array> {
  const chunk = options.chunk ?? 65_536;
  const end = options.failAfter ?? bytes.length;
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= end) {
        if (options.failAfter !== undefined) controller.error(new Error("connection reset"));
        else controller.close();
        return;
      }
      const next = Math.min(at + chunk, end);
      controller.enqueue(bytes.slice(at, next));
      at = next;
    },
  });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let length = 0;
  for await (const part of stream) {
    parts.push(part);
    length += part.byteLength;
  }
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<CloudError> {
  let caught: unknown = null;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof CloudError, `expected CloudError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

async function put(
  storage: Storage,
  userId: number,
  path: string,
  bytes: Uint8Array,
  options: { overwrite?: boolean; resumable?: boolean } = {},
) {
  const upload = await storage.openUpload(userId, {
    path,
    size: bytes.length,
    sha256: sha256(bytes),
    ...options,
  });
  await upload.write(streamOf(bytes.subarray(upload.offset)));
  return await upload.commit();
}

async function readFile(storage: Storage, userId: number, path: string): Promise<Uint8Array> {
  return await readAll((await storage.read(userId, path)).stream);
}

/** Every file (not folder) under `dir`, relative paths, sorted. */
async function filesUnder(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory) out.push(...await filesUnder(`${dir}/${entry.name}`, path));
      else out.push(path);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out.sort();
}

interface Fixture {
  dir: string;
  storage: LocalStorage;
  [Symbol.asyncDispose](): Promise<void>;
}

async function fixture(): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "cloud-storage-test-" });
  return {
    dir,
    storage: new LocalStorage(dir),
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("upload() streams, verifies and places a file that read() returns byte for byte", async () => {
  await using fx = await fixture();
  const bytes = bytesOf(1_000_003);
  const stored = await put(fx.storage, 1, "docs/report.bin", bytes);
  assert.equal(stored.path, "docs/report.bin");
  assert.equal(stored.name, "report.bin");
  assert.equal(stored.type, "file");
  assert.equal(stored.size, bytes.length);
  assert.deepEqual(await readFile(fx.storage, 1, "docs/report.bin"), bytes);
  assert.deepEqual(
    await Deno.readFile(`${fx.dir}/users/1/docs/report.bin`),
    bytes,
    "stored under users/<id>/",
  );
  const info = await fx.storage.stat(1, "docs/report.bin");
  assert.equal(info?.size, bytes.length);
  assert.deepEqual(await filesUnder(`${fx.dir}/tmp`), [], "no temporaries left");
});

Deno.test("upload() of an empty file and with a given modification time", async () => {
  await using fx = await fixture();
  const modified = new Date("2020-02-03T04:05:06.000Z");
  const upload = await fx.storage.openUpload(1, {
    path: "empty",
    size: 0,
    sha256: sha256(new Uint8Array()),
    modified,
  });
  assert.equal(upload.offset, 0);
  await upload.write(streamOf(new Uint8Array()));
  const stored = await upload.commit();
  assert.equal(stored.size, 0);
  assert.equal(stored.modified.getTime(), modified.getTime());
  assert.equal((await fx.storage.stat(1, "empty"))?.modified.getTime(), modified.getTime());
});

Deno.test("upload() with a wrong SHA-256 fails E_INTEGRITY and keeps the previous version", async () => {
  await using fx = await fixture();
  const old = bytesOf(5000, 1);
  await put(fx.storage, 1, "a.bin", old);
  const bytes = bytesOf(300_000, 2);
  for (const resumable of [false, true]) {
    const upload = await fx.storage.openUpload(1, {
      path: "a.bin",
      size: bytes.length,
      sha256: sha256(bytesOf(300_000, 3)),
      overwrite: true,
      resumable,
    });
    await rejectsWith(upload.write(streamOf(bytes)), "E_INTEGRITY");
    assert.deepEqual(await readFile(fx.storage, 1, "a.bin"), old);
    assert.deepEqual(await filesUnder(`${fx.dir}/tmp`), [], "a mismatched partial is dropped");
    assert.equal(await fx.storage.partialBytes(1), 0);
  }
  // A fresh name with a wrong hash leaves nothing visible.
  const upload = await fx.storage.openUpload(1, {
    path: "new.bin",
    size: bytes.length,
    sha256: "0".repeat(64),
  });
  await rejectsWith(upload.write(streamOf(bytes)), "E_INTEGRITY");
  assert.equal(await fx.storage.stat(1, "new.bin"), null);
  assert.deepEqual(await filesUnder(`${fx.dir}/users`), ["1/a.bin"]);
});

Deno.test("upload() of fewer bytes than declared fails E_INTEGRITY and leaves nothing", async () => {
  await using fx = await fixture();
  const bytes = bytesOf(200_000);
  const upload = await fx.storage.openUpload(1, {
    path: "short.bin",
    size: bytes.length,
    sha256: sha256(bytes),
  });
  await rejectsWith(upload.write(streamOf(bytes.subarray(0, 150_000))), "E_INTEGRITY");
  assert.equal(await fx.storage.stat(1, "short.bin"), null);
  assert.deepEqual(await filesUnder(`${fx.dir}/tmp`), []);
  await assert.rejects(upload.commit(), Error, "a failed upload cannot be committed");
});

Deno.test("upload() of more bytes than declared fails E_INTEGRITY and leaves nothing", async () => {
  await using fx = await fixture();
  const bytes = bytesOf(100_000);
  for (const resumable of [false, true]) {
    const upload = await fx.storage.openUpload(1, {
      path: "long.bin",
      size: 99_999,
      sha256: sha256(bytes.subarray(0, 99_999)),
      resumable,
    });
    await rejectsWith(upload.write(streamOf(bytes, { chunk: 4096 })), "E_INTEGRITY");
    assert.equal(await fx.storage.stat(1, "long.bin"), null);
    assert.deepEqual(await filesUnder(`${fx.dir}/tmp`), []);
  }
});

Deno.test("upload() whose source errors rethrows it, keeps the old version and no temporary", async () => {
  await using fx = await fixture();
  const old = bytesOf(1000, 9);
  await put(fx.storage, 1, "f", old);
  const bytes = bytesOf(500_000);
  const upload = await fx.storage.openUpload(1, {
    path: "f",
    size: bytes.length,
    sha256: sha256(bytes),
    overwrite: true,
  });
  await assert.rejects(upload.write(streamOf(bytes, { failAfter: 300_000 })), /connection reset/);
  assert.deepEqual(await readFile(fx.storage, 1, "f"), old);
  assert.deepEqual(await filesUnder(`${fx.dir}/tmp`), []);
});

Deno.test("openUpload() refuses an existing name without overwrite (E_EXISTS) and a folder (E_CONFLICT)", async () => {
  await using fx = await fixture();
  const bytes = bytesOf(10);
  await put(fx.storage, 1, "a/b.txt", bytes);
  await rejectsWith(put(fx.storage, 1, "a/b.txt", bytes), "E_EXISTS");
  await rejectsWith(put(fx.storage, 1, "a", bytes, { overwrite: true }), "E_CONFLICT");
  await rejectsWith(put(fx.storage, 1, "a/b.txt/c", bytes), "E_CONFLICT");
  await rejectsWith(put(fx.storage, 1, "../x", bytes), "E_BAD_NAME");
  const other = bytesOf(10, 2);
  await put(fx.storage, 1, "a/b.txt", other, { overwrite: true });
  assert.deepEqual(await readFile(fx.storage, 1, "a/b.txt"), other);
});

Deno.test("commit() refuses a name taken while the upload ran (E_EXISTS), keeping the winner", async () => {
  await using fx = await fixture();
  const mine = bytesOf(1000, 1);
  const upload = await fx.storage.openUpload(1, {
    path: "race.txt",
    size: mine.length,
    sha256: sha256(mine),
  });
  await upload.write(streamOf(mine));
  const theirs = bytesOf(10, 2);
  await put(fx.storage, 1, "race.txt", theirs);
  await rejectsWith(upload.commit(), "E_EXISTS");
  assert.deepEqual(await readFile(fx.storage, 1, "race.txt"), theirs);
  assert.deepEqual(await filesUnder(`${fx.dir}/tmp`), []);
});

Deno.test("a resumable upload broken mid-stream resumes from the bytes held", async () => {
  await using fx = await fixture();
  const bytes = bytesOf(3 * 65_536 + 123);
  const spec = {
    path: "big/video.bin",
    size: bytes.length,
    sha256: sha256(bytes),
    resumable: true,
  };
  const first = await fx.storage.openUpload(1, spec);
  assert.equal(first.offset, 0);
  await assert.rejects(first.write(streamOf(bytes, { failAfter: 100_000 })), /connection reset/);
  assert.equal(await fx.storage.stat(1, "big/video.bin"), null, "nothing visible");
  assert.equal(await fx.storage.partialBytes(1), 100_000);

  const second = await fx.storage.openUpload(1, spec);
  assert.equal(second.offset, 100_000);
  // Ends early but cleanly: still resumable.
  await rejectsWith(
    second.write(streamOf(bytes.subarray(100_000, 150_000))),
    "E_INTEGRITY",
  );
  assert.equal(await fx.storage.partialBytes(1), 150_000);

  const third = await fx.storage.openUpload(1, spec);
  assert.equal(third.offset, 150_000);
  await third.write(streamOf(bytes.subarray(third.offset)));
  const stored = await third.commit();
  assert.equal(stored.size, bytes.length);
  assert.deepEqual(await readFile(fx.storage, 1, "big/video.bin"), bytes);
  assert.equal(await fx.storage.partialBytes(1), 0);
  assert.deepEqual(await filesUnder(`${fx.dir}/tmp`), []);
});

Deno.test("a resumable upload's partial is only reused for the same path, size and SHA-256", async () => {
  await using fx = await fixture();
  const bytes = bytesOf(100_000);
  const spec = { path: "x.bin", size: bytes.length, sha256: sha256(bytes), resumable: true };
  const first = await fx.storage.openUpload(1, spec);
  await assert.rejects(first.write(streamOf(bytes, { failAfter: 50_000 })));
  const other = bytesOf(100_000, 7);
  const second = await fx.storage.openUpload(1, { ...spec, sha256: sha256(other) });
  assert.equal(second.offset, 0);
  await second.close();
  const again = await fx.storage.openUpload(1, spec);
  assert.equal(again.offset, 50_000);
  await again.abort();
  assert.equal(await fx.storage.partialBytes(1), 0);
  const fresh = await fx.storage.openUpload(1, spec);
  assert.equal(fresh.offset, 0, "abort() discards the partial");
  await fresh.close();
});

Deno.test("a complete resumable upload refused at commit (E_EXISTS) can be committed with overwrite", async () => {
  await using fx = await fixture();
  await put(fx.storage, 1, "doc", bytesOf(10, 1));
  const bytes = bytesOf(70_000, 2);
  const spec = { path: "doc", size: bytes.length, sha256: sha256(bytes), resumable: true };
  const upload = await fx.storage.openUpload(1, { ...spec, overwrite: true });
  await upload.write(streamOf(bytes));
  await fx.storage.remove(1, "doc", false);
  await put(fx.storage, 1, "doc", bytesOf(10, 3));
  // The name was taken again meanwhile; this upload did ask for overwrite, so it wins.
  await upload.commit();
  assert.deepEqual(await readFile(fx.storage, 1, "doc"), bytes);

  const next = bytesOf(80_000, 4);
  const nextSpec = { path: "doc2", size: next.length, sha256: sha256(next), resumable: true };
  const first = await fx.storage.openUpload(1, nextSpec);
  await first.write(streamOf(next));
  await put(fx.storage, 1, "doc2", bytesOf(5, 5));
  await rejectsWith(first.commit(), "E_EXISTS");
  assert.equal(await fx.storage.partialBytes(1), next.length);
  const retry = await fx.storage.openUpload(1, { ...nextSpec, overwrite: true });
  assert.equal(retry.offset, next.length);
  await retry.write(streamOf(new Uint8Array()));
  await retry.commit();
  assert.deepEqual(await readFile(fx.storage, 1, "doc2"), next);
});

Deno.test("a second upload of the same resumable content takes the first over (E_CONFLICT)", async () => {
  await using fx = await fixture();
  const bytes = bytesOf(200_000);
  const spec = { path: "same.bin", size: bytes.length, sha256: sha256(bytes), resumable: true };
  const first = await fx.storage.openUpload(1, spec);
  // A source that sends 64 KiB and then stalls, like a connection that went silent.
  let sent = false;
  const { promise: pulledTwice, resolve } = Promise.withResolvers<void>();
  const stalled = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(bytes.slice(0, 65_536));
      } else {
        resolve();
        return new Promise<void>(() => {});
      }
    },
  });
  const firstWrite = rejectsWith(first.write(stalled), "E_CONFLICT");
  await pulledTwice;
  const second = await fx.storage.openUpload(1, spec);
  await firstWrite;
  assert.ok(second.offset === 0 || second.offset === 65_536, `offset ${second.offset}`);
  await rejectsWith(first.write(streamOf(bytes)), "E_CONFLICT");
  await second.write(streamOf(bytes.subarray(second.offset)));
  await second.commit();
  assert.deepEqual(await readFile(fx.storage, 1, "same.bin"), bytes);
  assert.deepEqual(await filesUnder(`${fx.dir}/tmp`), []);
});

Deno.test("two concurrent uploads of one name end with exactly one complete version", async () => {
  await using fx = await fixture();
  const a = bytesOf(700_000, 1);
  const b = bytesOf(650_000, 2);
  for (const overwrite of [true, false]) {
    const path = `race-${overwrite}.bin`;
    const [ua, ub] = await Promise.all([
      fx.storage.openUpload(1, { path, size: a.length, sha256: sha256(a), overwrite }),
      fx.storage.openUpload(1, { path, size: b.length, sha256: sha256(b), overwrite }),
    ]);
    const results = await Promise.allSettled([
      ua.write(streamOf(a, { chunk: 10_000 })).then(() => ua.commit()),
      ub.write(streamOf(b, { chunk: 10_000 })).then(() => ub.commit()),
    ]);
    const final = await readFile(fx.storage, 1, path);
    const isA = final.length === a.length && sha256(final) === sha256(a);
    const isB = final.length === b.length && sha256(final) === sha256(b);
    assert.ok(isA !== isB, "exactly one of the two contents");
    if (overwrite) {
      assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled"]);
    } else {
      const refused = results.filter((r) => r.status === "rejected");
      assert.equal(refused.length, 1);
      const reason = (refused[0] as PromiseRejectedResult).reason;
      assert.ok(reason instanceof CloudError && reason.code === "E_EXISTS");
      assert.equal(results[isA ? 0 : 1]!.status, "fulfilled");
    }
  }
  assert.deepEqual(await filesUnder(`${fx.dir}/tmp`), []);
});

Deno.test("read() with an offset returns the tail; past the end is E_OFFSET", async () => {
  await using fx = await fixture();
  const bytes = bytesOf(150_000);
  await put(fx.storage, 1, "t.bin", bytes);
  const tail = await fx.storage.read(1, "t.bin", 100_001);
  assert.equal(tail.size, bytes.length);
  assert.deepEqual(await readAll(tail.stream), bytes.subarray(100_001));
  const none = await fx.storage.read(1, "t.bin", bytes.length);
  assert.equal((await readAll(none.stream)).length, 0);
  const error = await rejectsWith(fx.storage.read(1, "t.bin", bytes.length + 1), "E_OFFSET");
  assert.equal(error.details.offset, bytes.length);
  await rejectsWith(fx.storage.read(1, "missing", 0), "E_NOT_FOUND");
  await rejectsWith(fx.storage.read(1, "t.bin/x", 0), "E_NOT_FOUND");
  await fx.storage.mkdir(1, "d", false);
  await rejectsWith(fx.storage.read(1, "d", 0), "E_CONFLICT");
});

Deno.test("read() keeps serving the version it opened when the file is replaced", async () => {
  await using fx = await fixture();
  const old = bytesOf(300_000, 1);
  await put(fx.storage, 1, "v", old);
  const reading = await fx.storage.read(1, "v");
  await put(fx.storage, 1, "v", bytesOf(1000, 2), { overwrite: true });
  assert.deepEqual(await readAll(reading.stream), old);
});

Deno.test("users cannot see each other's files", async () => {
  await using fx = await fixture();
  await put(fx.storage, 1, "secret.txt", bytesOf(10));
  assert.deepEqual(await fx.storage.list(2, ""), []);
  assert.equal(await fx.storage.stat(2, "secret.txt"), null);
  await rejectsWith(fx.storage.read(2, "secret.txt"), "E_NOT_FOUND");
  await assert.rejects(fx.storage.list(0, ""), RangeError);
  await assert.rejects(fx.storage.list(1.5, ""), RangeError);
});

Deno.test("mkdir(), list(), stat() report folders and files, sorted, and refuse the wrong kind", async () => {
  await using fx = await fixture();
  assert.deepEqual(await fx.storage.list(1, ""), []);
  assert.equal((await fx.storage.stat(1, ""))?.type, "dir");
  const made = await fx.storage.mkdir(1, "b", false);
  assert.equal(made.type, "dir");
  await rejectsWith(fx.storage.mkdir(1, "b", false), "E_EXISTS");
  await fx.storage.mkdir(1, "b", true);
  await rejectsWith(fx.storage.mkdir(1, "x/y", false), "E_NOT_FOUND");
  await fx.storage.mkdir(1, "x/y/z", true);
  await put(fx.storage, 1, "a.txt", bytesOf(3));
  await rejectsWith(fx.storage.mkdir(1, "a.txt", false), "E_EXISTS");
  await rejectsWith(fx.storage.mkdir(1, "a.txt", true), "E_EXISTS");
  await rejectsWith(fx.storage.mkdir(1, "a.txt/sub", true), "E_CONFLICT");
  await rejectsWith(fx.storage.mkdir(1, "a.txt/sub", false), "E_CONFLICT");
  const root = await fx.storage.list(1, "");
  assert.deepEqual(root.map((e) => [e.name, e.type, e.size]), [
    ["a.txt", "file", 3],
    ["b", "dir", 0],
    ["x", "dir", 0],
  ]);
  assert.deepEqual((await fx.storage.list(1, "x/y")).map((e) => e.path), ["x/y/z"]);
  assert.deepEqual((await fx.storage.list(1, "x/y/")).map((e) => e.path), ["x/y/z"]);
  await rejectsWith(fx.storage.list(1, "a.txt"), "E_CONFLICT");
  await rejectsWith(fx.storage.list(1, "nope"), "E_NOT_FOUND");
  await rejectsWith(fx.storage.list(1, "/"), "E_BAD_NAME");
  assert.equal(await fx.storage.stat(1, "nope"), null);
  assert.equal(await fx.storage.stat(1, "a.txt/x"), null);
});

Deno.test("remove() deletes files and folders; a non-empty folder needs recursive (E_CONFLICT)", async () => {
  await using fx = await fixture();
  await put(fx.storage, 1, "d/1", bytesOf(1));
  await put(fx.storage, 1, "d/e/2", bytesOf(2));
  await fx.storage.mkdir(1, "d/empty", false);
  await rejectsWith(fx.storage.remove(1, "d", false), "E_CONFLICT");
  assert.equal(await fx.storage.remove(1, "d/empty", false), 1);
  assert.equal(await fx.storage.remove(1, "d", true), 4, "d, d/1, d/e, d/e/2");
  assert.deepEqual(await fx.storage.list(1, ""), []);
  await rejectsWith(fx.storage.remove(1, "d", true), "E_NOT_FOUND");
  await rejectsWith(fx.storage.remove(1, "", true), "E_BAD_NAME");
  await put(fx.storage, 1, "f", bytesOf(1));
  assert.equal(await fx.storage.remove(1, "f", false), 1);
  assert.equal(await fx.storage.stat(1, "f"), null);
});

Deno.test("rename() moves files and folders with E_EXISTS, E_CONFLICT, E_NOT_FOUND, E_BAD_NAME", async () => {
  await using fx = await fixture();
  const one = bytesOf(11, 1);
  const two = bytesOf(22, 2);
  await put(fx.storage, 1, "one", one);
  await put(fx.storage, 1, "two", two);
  await fx.storage.mkdir(1, "dir/sub", true);
  await rejectsWith(fx.storage.rename(1, "one", "two", false), "E_EXISTS");
  assert.deepEqual(await readFile(fx.storage, 1, "two"), two);
  await fx.storage.rename(1, "one", "two", true);
  assert.deepEqual(await readFile(fx.storage, 1, "two"), one);
  assert.equal(await fx.storage.stat(1, "one"), null);
  await rejectsWith(fx.storage.rename(1, "one", "x", false), "E_NOT_FOUND");
  await rejectsWith(fx.storage.rename(1, "two", "nope/two", false), "E_NOT_FOUND");
  await rejectsWith(fx.storage.rename(1, "two", "dir", true), "E_CONFLICT");
  await rejectsWith(fx.storage.rename(1, "dir", "two", true), "E_CONFLICT");
  await rejectsWith(fx.storage.rename(1, "dir", "dir/sub/inner", false), "E_BAD_NAME");
  await rejectsWith(fx.storage.rename(1, "two", "two/x", false), "E_BAD_NAME");
  await rejectsWith(fx.storage.rename(1, "two", "../two", false), "E_BAD_NAME");
  await fx.storage.rename(1, "two", "two", false);
  await fx.storage.rename(1, "two", "dir/sub/two", false);
  await fx.storage.rename(1, "dir", "moved", false);
  assert.deepEqual(await readFile(fx.storage, 1, "moved/sub/two"), one);
  await fx.storage.mkdir(1, "full/x", true);
  await rejectsWith(fx.storage.rename(1, "moved", "full", true), "E_CONFLICT");
  await fx.storage.mkdir(1, "empty", false);
  await fx.storage.rename(1, "moved", "empty", true);
  assert.deepEqual(await readFile(fx.storage, 1, "empty/sub/two"), one);
});

Deno.test("symlinks planted in a user's folder are never followed", async () => {
  await using fx = await fixture();
  const outside = await Deno.makeTempDir({ prefix: "cloud-outside-" });
  try {
    await Deno.writeTextFile(`${outside}/secret.txt`, "secret");
    await put(fx.storage, 1, "real/a.txt", bytesOf(5));
    const root = `${fx.dir}/users/1`;
    await Deno.symlink(outside, `${root}/evil`);
    await Deno.symlink(`${outside}/secret.txt`, `${root}/link.txt`);
    await Deno.symlink(outside, `${root}/real/inner`);

    await rejectsWith(fx.storage.read(1, "link.txt"), "E_BAD_NAME");
    await rejectsWith(fx.storage.read(1, "evil/secret.txt"), "E_BAD_NAME");
    assert.deepEqual((await fx.storage.list(1, "")).map((e) => e.name), ["real"]);
    assert.deepEqual((await fx.storage.list(1, "real")).map((e) => e.name), ["a.txt"]);
    await rejectsWith(fx.storage.list(1, "evil"), "E_BAD_NAME");
    await rejectsWith(fx.storage.stat(1, "evil/secret.txt"), "E_BAD_NAME");

    const bytes = bytesOf(10);
    await rejectsWith(put(fx.storage, 1, "evil/new.txt", bytes), "E_BAD_NAME");
    await rejectsWith(put(fx.storage, 1, "link.txt", bytes, { overwrite: true }), "E_BAD_NAME");
    await rejectsWith(put(fx.storage, 1, "evil/deep/new.txt", bytes), "E_BAD_NAME");
    await rejectsWith(fx.storage.mkdir(1, "evil/sub", true), "E_BAD_NAME");
    await rejectsWith(fx.storage.rename(1, "link.txt", "renamed", false), "E_BAD_NAME");
    await rejectsWith(fx.storage.rename(1, "real/a.txt", "evil/a.txt", false), "E_BAD_NAME");
    await rejectsWith(fx.storage.rename(1, "real/a.txt", "link.txt", true), "E_BAD_NAME");
    await rejectsWith(fx.storage.remove(1, "link.txt", false), "E_BAD_NAME");
    await rejectsWith(fx.storage.remove(1, "evil", true), "E_BAD_NAME");
    await rejectsWith(fx.storage.remove(1, "evil/secret.txt", false), "E_BAD_NAME");

    const walked = [];
    for await (const file of fx.storage.walk()) walked.push(`${file.userId}:${file.path}`);
    assert.deepEqual(walked, ["1:real/a.txt"]);

    // Removing a real folder that holds a link removes the link, not what it points to.
    assert.equal(await fx.storage.remove(1, "real", true), 2);
    assert.deepEqual(await filesUnder(outside), ["secret.txt"]);
    assert.equal(await Deno.readTextFile(`${outside}/secret.txt`), "secret");

    // A user folder that is itself a link is refused.
    await Deno.symlink(outside, `${fx.dir}/users/2`);
    await rejectsWith(fx.storage.list(2, ""), "E_INTERNAL");
    await rejectsWith(put(fx.storage, 2, "x", bytes), "E_INTERNAL");
    assert.deepEqual(await filesUnder(outside), ["secret.txt"]);
  } finally {
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("cleanup() removes stale temporaries and old partials, keeps young and active ones", async () => {
  await using fx = await fixture();
  const bytes = bytesOf(100_000);
  const young = { path: "young", size: bytes.length, sha256: sha256(bytes), resumable: true };
  const aged = { ...young, path: "old" };
  for (const spec of [young, aged]) {
    const upload = await fx.storage.openUpload(1, spec);
    await assert.rejects(upload.write(streamOf(bytes, { failAfter: 40_000 })));
  }
  const tmp = `${fx.dir}/tmp/1`;
  // Age the "old" partial by 25 h.
  const past = new Date(Date.now() - DAY_MS - 3_600_000);
  const before = await filesUnder(tmp);
  assert.equal(before.length, 4);
  const held = await fx.storage.openUpload(1, { ...young, path: "held" });
  const heldFiles = (await filesUnder(tmp)).filter((f) => !before.includes(f));
  for (const name of before.filter((n) => n.endsWith(".json"))) {
    if (JSON.parse(await Deno.readTextFile(`${tmp}/${name}`)).path !== "old") continue;
    for (const file of [name, name.replace(/\.json$/, ".part")]) {
      await Deno.utime(`${tmp}/${file}`, past, past);
    }
  }
  await Deno.writeFile(`${tmp}/deadbeef.tmp`, bytesOf(10)); // from a killed process
  await Deno.writeFile(`${fx.dir}/tmp/stray`, bytesOf(10));
  await Deno.utime(`${fx.dir}/tmp/stray`, past, past);

  const removed = await fx.storage.cleanup(DAY_MS);
  assert.equal(removed, 3, "old partial, stale .tmp, stray old file");
  const after = await filesUnder(`${fx.dir}/tmp`);
  assert.equal(after.length, 2 + heldFiles.length);
  assert.ok(!after.includes("stray"));
  assert.ok(!after.includes("1/deadbeef.tmp"));

  assert.equal((await fx.storage.openUpload(1, aged)).offset, 0, "the old partial is gone");
  const resumed = await fx.storage.openUpload(1, young);
  assert.equal(resumed.offset, 40_000, "the young partial still resumes");
  await resumed.close();

  // An upload in progress survives even cleanup(0).
  await fx.storage.cleanup(0);
  await held.write(streamOf(bytes));
  await held.commit();
  assert.deepEqual(await readFile(fx.storage, 1, "held"), bytes);
});

Deno.test("walk(), partialBytes() and removeUser() cover every user's files", async () => {
  await using fx = await fixture();
  await put(fx.storage, 1, "a", bytesOf(1));
  await put(fx.storage, 1, "d/b", bytesOf(2));
  await put(fx.storage, 12, "c", bytesOf(3));
  await fx.storage.mkdir(1, "empty", false);
  const all = [];
  for await (const file of fx.storage.walk()) all.push([file.userId, file.path, file.size]);
  assert.deepEqual(all, [[1, "a", 1], [1, "d/b", 2], [12, "c", 3]]);
  const one = [];
  for await (const file of fx.storage.walk(12)) one.push(file.path);
  assert.deepEqual(one, ["c"]);

  const bytes = bytesOf(50_000);
  const upload = await fx.storage.openUpload(1, {
    path: "p",
    size: bytes.length,
    sha256: sha256(bytes),
    resumable: true,
  });
  await assert.rejects(upload.write(streamOf(bytes, { failAfter: 20_000 })));
  assert.equal(await fx.storage.partialBytes(1), 20_000);
  assert.equal(await fx.storage.partialBytes(12), 0);

  await fx.storage.removeUser(1);
  assert.deepEqual(await fx.storage.list(1, ""), []);
  assert.equal(await fx.storage.partialBytes(1), 0);
  assert.deepEqual(await filesUnder(`${fx.dir}/users`), ["12/c"]);
});

// A 1 MiB tmpfs needs root and mount(8); elsewhere the test is skipped with the reason.
const tmpfsSkip = await (async (): Promise<string | null> => {
  if (Deno.build.os !== "linux") return "tmpfs needs Linux";
  if (Deno.uid() !== 0) return "mounting a tmpfs needs root";
  const probe = await Deno.makeTempDir({ prefix: "cloud-tmpfs-probe-" });
  try {
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=1m", "tmpfs", probe],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!mount.success) return "mount -t tmpfs failed";
    await new Deno.Command("umount", { args: [probe] }).output();
    return null;
  } catch (error) {
    return `mount unavailable: ${error}`;
  } finally {
    await Deno.remove(probe, { recursive: true }).catch(() => {});
  }
})();
if (tmpfsSkip !== null) console.log(`skipping the disk-full storage test: ${tmpfsSkip}`);

Deno.test({
  name: "upload() on a full disk fails E_NO_SPACE, leaves no temporary and the old version",
  ignore: tmpfsSkip !== null,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cloud-full-" });
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir],
    }).output();
    assert.ok(mount.success, "mount tmpfs");
    try {
      const storage = new LocalStorage(dir);
      const old = bytesOf(20_000, 1);
      await put(storage, 1, "f.bin", old);
      const big = bytesOf(2 * 1024 * 1024, 2);
      await rejectsWith(put(storage, 1, "f.bin", big, { overwrite: true }), "E_NO_SPACE");
      assert.deepEqual(await readFile(storage, 1, "f.bin"), old);
      assert.deepEqual(await filesUnder(`${dir}/tmp`), []);

      // A resumable upload keeps what it wrote (it counts toward the quota) until aborted.
      const spec = { path: "r.bin", size: big.length, sha256: sha256(big), resumable: true };
      const upload = await storage.openUpload(1, spec);
      await rejectsWith(upload.write(streamOf(big)), "E_NO_SPACE");
      assert.ok((await storage.partialBytes(1)) > 0);
      assert.equal(await storage.stat(1, "r.bin"), null);
      const again = await storage.openUpload(1, spec);
      assert.equal(again.offset, await storage.partialBytes(1));
      await again.abort();
      assert.deepEqual(await filesUnder(`${dir}/tmp`), []);
      assert.deepEqual(await readFile(storage, 1, "f.bin"), old);
    } finally {
      await new Deno.Command("umount", { args: [dir] }).output();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

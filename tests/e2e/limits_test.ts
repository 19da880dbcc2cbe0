import assert from "node:assert/strict";
import { encodePreamble, FrameReader } from "../../protocol/frame.ts";
import { randomBytes, RawClient, sha256Of } from "./_files.ts";
import { e2eTest, GOOD_PASSWORD } from "./_harness.ts";

const ADA = "ada@example.com";

e2eTest(
  "wrong offsets, kinds and sizes get clear codes on a connection that goes on",
  async (f) => {
    assert.equal((await f.register(ADA, GOOD_PASSWORD)).code, 0);
    const raw = await RawClient.login(f.server, ADA, GOOD_PASSWORD);
    try {
      const bytes = randomBytes(1000);
      assert.equal((await raw.putInline("a.bin", bytes)).t, "ok");
      assert.equal((await raw.request({ t: "mkdir", path: "folder", parents: false })).t, "ok");

      // An offset past the end: E_OFFSET with the real size.
      const past = await raw.expectError({ t: "get", path: "a.bin", offset: 1001 }, "E_OFFSET");
      assert.equal(past.offset, 1000);
      // An offset at the end is an empty body, not an error.
      const atEnd = await raw.request({ t: "get", path: "a.bin", offset: 1000 });
      assert.equal(atEnd.t, "data");
      assert.equal(atEnd.length, 0);
      assert.equal(atEnd.sha256, sha256Of(bytes));
      // A tail from the middle.
      const tail = await raw.request({ t: "get", path: "a.bin", offset: 600 });
      assert.equal(tail.length, 400);
      assert.deepEqual(await raw.reader.readExact(400), bytes.subarray(600));

      // The wrong kind of entry.
      await raw.expectError({ t: "get", path: "folder", offset: 0 }, "E_CONFLICT");
      await raw.expectError({ t: "ls", path: "a.bin" }, "E_CONFLICT");
      await raw.expectError({ t: "ls", path: "nothing-here" }, "E_NOT_FOUND");
      await raw.expectError({ t: "get", path: "nothing-here", offset: 0 }, "E_NOT_FOUND");
      await raw.expectError({ t: "rm", path: "folder/x", recursive: false }, "E_NOT_FOUND");

      // Sizes and hashes that are not numbers or hex never reach the storage.
      for (const size of [-1, 1.5, "10", 2 ** 53]) {
        await raw.expectError({
          t: "put",
          path: "x",
          size,
          sha256: sha256Of(""),
          overwrite: false,
          mode: "resumable",
        }, "E_BAD_MESSAGE");
      }
      await raw.expectError({
        t: "put",
        path: "x",
        size: 0,
        sha256: "Z".repeat(64),
        overwrite: false,
        mode: "resumable",
      }, "E_BAD_MESSAGE");
      await raw.expectError({ t: "get", path: "a.bin", offset: -5 }, "E_BAD_MESSAGE");

      // After all that, the same connection still serves, and nothing else was stored.
      const ls = await raw.request({ t: "ls", path: "" });
      assert.equal(ls.t, "ok");
      assert.deepEqual(
        (ls.entries as { name: string }[]).map((e) => e.name).sort(),
        ["a.bin", "folder"],
      );

      // An inline upload over 1 MiB ends the connection: its body is not read or skipped.
      const big = randomBytes(1024 * 1024 + 1);
      await raw.send({
        t: "put",
        path: "big.bin",
        size: big.length,
        sha256: sha256Of(big),
        overwrite: false,
        mode: "inline",
      });
      const refused = await raw.next();
      assert.equal(refused.code, "E_FRAME_TOO_LARGE", JSON.stringify(refused));
      assert.equal(await raw.reader.readFrame(), null);
    } finally {
      await raw.close();
    }
  },
);

e2eTest("connections over the per-address cap are refused with E_BUSY", async (f) => {
  const held: Deno.TlsConn[] = [];
  const closeAll = () => {
    for (const conn of held.splice(0)) {
      try {
        conn.close();
      } catch {
        // closed by the server
      }
    }
  };
  try {
    for (let i = 0; i < 33; i++) held.push(await f.server.rawConnect());
    // Which one is refused depends on the order the server finished the handshakes.
    const answers = await Promise.all(held.map(async (conn) => {
      await conn.writable.getWriter().write(encodePreamble());
      const reader = new FrameReader(conn.readable);
      assert.equal(await reader.readPreamble(), 1);
      return await reader.readFrame() as { t: string; code?: string };
    }));
    assert.equal(answers.filter((a) => a.t === "hello").length, 32);
    assert.deepEqual(answers.filter((a) => a.t === "error").map((a) => a.code), ["E_BUSY"]);
    // Freeing the slots lets a new client in.
    closeAll();
    assert.equal((await f.register(ADA, GOOD_PASSWORD)).code, 0);
  } finally {
    closeAll();
  }
});

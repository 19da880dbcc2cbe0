import assert from "node:assert/strict";
import { randomBytes, RawClient, sha256Of, waitFor } from "./_files.ts";
import { e2eTest, GOOD_PASSWORD } from "./_harness.ts";

const ADA = "ada@example.com";
const MiB = 1024 * 1024;

e2eTest("parallel uploads on two connections cannot pass the quota together", async (f) => {
  assert.equal((await f.register(ADA, GOOD_PASSWORD)).code, 0);
  const one = await RawClient.login(f.server, ADA, GOOD_PASSWORD);
  const two = await RawClient.login(f.server, ADA, GOOD_PASSWORD);
  try {
    const a = randomBytes(2 * MiB);
    const b = randomBytes(2 * MiB);
    const put = (path: string, bytes: Uint8Array) => ({
      t: "put",
      path,
      size: bytes.length,
      sha256: sha256Of(bytes),
      overwrite: false,
      mode: "resumable",
    });
    // The first upload reserves its 2 MiB before any byte is sent...
    assert.deepEqual(await one.request(put("a.bin", a)), { t: "ready", offset: 0 });
    // ...so the second, on another connection, no longer fits in 3 MiB.
    await two.expectError(put("b.bin", b), "E_QUOTA");
    await one.writer.writeBytes(a);
    assert.equal((await one.next()).t, "ok");
    // Once the first is stored, its bytes count as used: still no room for the second.
    await two.expectError(put("b.bin", b), "E_QUOTA");
    const df = await two.request({ t: "df" });
    assert.equal(df.used, 2 * MiB);
    assert.equal(df.quota, 3 * MiB);
  } finally {
    await one.close();
    await two.close();
  }
}, ["--quota", "3MiB"]);

e2eTest("an interrupted upload near the quota can still be resumed", async (f) => {
  assert.equal((await f.register(ADA, GOOD_PASSWORD)).code, 0);
  const bytes = randomBytes(2 * MiB);
  const first = await RawClient.login(f.server, ADA, GOOD_PASSWORD);
  const ready = await first.putResumable("big.bin", bytes, { sendBytes: 1.5 * MiB });
  assert.equal(ready.t, "ready");
  // Wait until the server holds part of it, then drop the connection.
  await waitFor("a partial upload on the server", async () => {
    const probe = await RawClient.login(f.server, ADA, GOOD_PASSWORD);
    try {
      const df = await probe.request({ t: "df" });
      return (df.used as number) > 0 ? true : null;
    } finally {
      await probe.close();
    }
  });
  await first.close();
  // The partial counts toward the quota once: resuming the same file fits in 3 MiB.
  const again = await RawClient.login(f.server, ADA, GOOD_PASSWORD);
  try {
    const answer = await again.request({
      t: "put",
      path: "big.bin",
      size: bytes.length,
      sha256: sha256Of(bytes),
      overwrite: false,
      mode: "resumable",
    });
    assert.equal(answer.t, "ready", JSON.stringify(answer));
    const offset = answer.offset as number;
    assert.ok(offset > 0, `resumed at ${offset}`);
    await again.writer.writeBytes(bytes.subarray(offset));
    assert.equal((await again.next()).t, "ok");
    const { bytes: stored } = await again.get("big.bin");
    assert.equal(sha256Of(stored), sha256Of(bytes));
  } finally {
    await again.close();
  }
}, ["--quota", "3MiB"]);

import assert from "node:assert/strict";
import bcrypt from "bcryptjs";
import { HasherPool, isHasherWorker } from "../../server/hasher.ts";

Deno.test("isHasherWorker() is false on the main thread", () => {
  assert.equal(isHasherWorker(), false);
});

Deno.test("HasherPool hashes and compares a password round trip (cost 4)", async () => {
  const pool = new HasherPool({ cost: 4, size: 1 });
  try {
    const hash = await pool.hash("correct horse battery staple");
    assert.match(hash, /^\$2b\$04\$[./A-Za-z0-9]{53}$/);
    assert.equal(await pool.compare("correct horse battery staple", hash), true);
    assert.equal(await pool.compare("correct horse battery stapler", hash), false);
    assert.equal(await pool.compare("", hash), false);
    // Interoperable with bcryptjs on the main thread, both ways.
    assert.equal(bcrypt.compareSync("correct horse battery staple", hash), true);
    assert.equal(await pool.compare("s3cret pass", bcrypt.hashSync("s3cret pass", 4)), true);
    // A fresh salt each time.
    assert.notEqual(await pool.hash("correct horse battery staple"), hash);
  } finally {
    pool.close();
  }
});

Deno.test("HasherPool hashes UTF-8 passwords and refuses more than 72 bytes", async () => {
  const pool = new HasherPool({ cost: 4, size: 1 });
  try {
    const hash = await pool.hash("pässwörd 密码 🔑");
    assert.equal(await pool.compare("pässwörd 密码 🔑", hash), true);
    assert.equal(await pool.compare("passwörd 密码 🔑", hash), false);
    await assert.rejects(pool.hash("x".repeat(73)), RangeError);
    // A 72-byte password followed by more never matches, although bcrypt would truncate.
    const long = "y".repeat(72);
    const longHash = await pool.hash(long);
    assert.equal(await pool.compare(long, longHash), true);
    assert.equal(await pool.compare(long + "z", longHash), false);
  } finally {
    pool.close();
  }
});

Deno.test("HasherPool.dummyCompare() resolves false after a comparison of the pool's cost", async () => {
  const pool = new HasherPool({ cost: 4, size: 1 });
  try {
    assert.equal(await pool.dummyCompare("correct horse battery staple"), false);
    assert.equal(await pool.dummyCompare(""), false);
    assert.equal(await pool.dummyCompare("z".repeat(100)), false);
  } finally {
    pool.close();
  }
});

Deno.test("HasherPool.dummyCompare() takes about as long as a real comparison (cost 8)", async () => {
  const pool = new HasherPool({ cost: 8, size: 1 });
  try {
    const hash = await pool.hash("some password");
    const time = async (fn: () => Promise<boolean>) => {
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) await fn();
      return performance.now() - t0;
    };
    await pool.dummyCompare("warm up");
    const real = await time(() => pool.compare("wrong password", hash));
    const dummy = await time(() => pool.dummyCompare("wrong password"));
    assert.ok(dummy > real * 0.5 && dummy < real * 2, `real ${real} ms, dummy ${dummy} ms`);
  } finally {
    pool.close();
  }
});

Deno.test("HasherPool rejects a compare against something that is not a bcrypt hash", async () => {
  const pool = new HasherPool({ cost: 4, size: 1 });
  try {
    await assert.rejects(pool.compare("password", "x".repeat(60)), /bcrypt failed: Invalid salt/);
    // The worker keeps serving after a failed job.
    assert.equal(await pool.compare("password", "not a hash"), false);
    assert.equal(typeof (await pool.hash("after the failure")), "string");
  } finally {
    pool.close();
  }
});

Deno.test("HasherPool refuses a cost outside 4..31 and a bad size (RangeError)", () => {
  for (const cost of [3, 32, 0, -1, 10.5, Number.NaN]) {
    assert.throws(() => new HasherPool({ cost }), RangeError, String(cost));
  }
  for (const size of [0, -1, 1.5]) {
    assert.throws(() => new HasherPool({ cost: 4, size }), RangeError, String(size));
  }
});

Deno.test("HasherPool.close() rejects queued and running jobs and later calls", async () => {
  const pool = new HasherPool({ cost: 12, size: 1 });
  const running = pool.hash("first");
  const queued = pool.compare("second", "$2b$12$" + "a".repeat(53));
  assert.equal(pool.pending, 1);
  pool.close();
  await assert.rejects(running, /Hasher pool is closed/);
  await assert.rejects(queued, /Hasher pool is closed/);
  await assert.rejects(pool.hash("third"), /Hasher pool is closed/);
  assert.equal(pool.pending, 0);
  pool.close(); // idempotent
});

Deno.test("HasherPool keeps the event loop responsive while 4 cost-10 hashes run", async () => {
  // One hash's duration on this machine, measured on the main thread (it blocks it).
  const t0 = performance.now();
  bcrypt.hashSync("measure one hash", 10);
  const oneHash = performance.now() - t0;

  const pool = new HasherPool({ cost: 10 });
  try {
    await pool.hash("warm the workers up");
    let maxLag = 0;
    let ticks = 0;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last - 5);
      last = now;
      ticks++;
    }, 5);
    const started = performance.now();
    let hashes: string[];
    try {
      hashes = await Promise.all([1, 2, 3, 4].map((i) => pool.hash(`password number ${i}`)));
    } finally {
      clearInterval(timer);
    }
    const elapsed = performance.now() - started;
    assert.equal(hashes.length, 4);
    for (const hash of hashes) assert.match(hash, /^\$2b\$10\$/);
    assert.ok(ticks >= 3, `only ${ticks} timer ticks in ${elapsed} ms`);
    // Hashing on the main thread would stall a tick for at least one whole hash; leave
    // room for a loaded 2-core machine (three threads on two cores) below that.
    assert.ok(
      maxLag < oneHash * 0.75,
      `max timer lag ${maxLag.toFixed(1)} ms, one hash ${oneHash.toFixed(1)} ms`,
    );
  } finally {
    pool.close();
  }
});

import assert from "node:assert/strict";
import { join } from "node:path";
import { e2eTest, type Fixture, GOOD_PASSWORD, runCloud, ServerProcess } from "./_harness.ts";

const EMAIL = "ada@example.com";

e2eTest("register, login and whoami work through the real CLI over TLS", async (f) => {
  const reg = await f.register(
    " Ada@Example.COM ",
    GOOD_PASSWORD,
    "Ada Lovelace",
    "+44 (20) 7946-0000",
  );
  assert.equal(reg.code, 0, reg.stderr);
  const login = await f.as(EMAIL, GOOD_PASSWORD, ["login"]);
  assert.equal(login.code, 0, login.stderr);
  const who = await f.as(EMAIL, GOOD_PASSWORD, ["whoami", "--json"]);
  assert.equal(who.code, 0, who.stderr);
  const me = JSON.parse(who.stdout);
  assert.equal(me.email, EMAIL);
  assert.equal(me.name, "Ada Lovelace");
  assert.equal(me.phone, "+44 (20) 7946-0000");
  // Options may stand after the command too.
  const after = await f.connect(["whoami", "--email", EMAIL, "--json"], {
    env: { CLOUD_PASSWORD: GOOD_PASSWORD },
  });
  assert.equal(after.code, 0, after.stderr);
  assert.equal(JSON.parse(after.stdout).email, EMAIL);
  // The password is never in the server log.
  assert.ok(!f.server.lines.some((l) => l.includes(GOOD_PASSWORD)));
  assert.ok(
    f.server.lines.some((l) => /auth_ok .*email=ada@example.com.*src=127\.0\.0\.1/.test(l)),
  );
});

e2eTest("register refuses a duplicate email with exit 6", async (f) => {
  assert.equal((await f.register(EMAIL, GOOD_PASSWORD)).code, 0);
  const again = await f.register("ADA@example.com", "Another-Long-Secret-99");
  assert.equal(again.code, 6, again.stderr);
  assert.match(again.stderr, /already exists/);
});

e2eTest("register validates email, name, phone and password (exit 2)", async (f) => {
  const cases: [string, string, string, string, RegExp][] = [
    ["not-an-email", GOOD_PASSWORD, "Ada", "5550100", /email/i],
    [EMAIL, GOOD_PASSWORD, "", "5550100", /name/i],
    [EMAIL, GOOD_PASSWORD, "x".repeat(51), "5550100", /name/i],
    [EMAIL, GOOD_PASSWORD, "Ada\u0007", "5550100", /name/i],
    [EMAIL, GOOD_PASSWORD, "Ada", "12", /phone/i],
    [EMAIL, GOOD_PASSWORD, "Ada", "555-CALL-NOW", /phone/i],
    [EMAIL, "short", "Ada", "5550100", /password/i],
    [EMAIL, "password123", "Ada", "5550100", /password|common|guess/i],
    [EMAIL, `x${EMAIL}y-Long-Enough`, "Ada", "5550100", /email/i],
    [EMAIL, "é".repeat(37), "Ada", "5550100", /72/], // 74 bytes
  ];
  for (const [email, password, name, phone, message] of cases) {
    const r = await f.register(email, password, name, phone);
    assert.equal(r.code, 2, `${email} ${password} ${name} ${phone}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  // Nothing was created by the refused attempts.
  const users = await f.admin(["users", "--json"]);
  assert.deepEqual(JSON.parse(users.stdout), []);
});

e2eTest(
  "login failure is generic: wrong password and unknown email look the same (exit 3)",
  async (f) => {
    await f.register(EMAIL, GOOD_PASSWORD);
    const wrong = await f.as(EMAIL, "Wrong-Password-123", ["login"]);
    const unknown = await f.as("nobody@example.com", "Wrong-Password-123", ["login"]);
    assert.equal(wrong.code, 3);
    assert.equal(unknown.code, 3);
    assert.equal(wrong.stderr, unknown.stderr);
    assert.ok(
      f.server.lines.some((l) => /auth_fail .*email=nobody@example.com.*src=127\.0\.0\.1/.test(l)),
    );
  },
);

async function failLogins(f: Fixture, email: string, n: number) {
  const codes = [];
  for (let i = 0; i < n; i++) {
    codes.push((await f.as(email, `Wrong-Guess-${i}-xyz`, ["login"])).code);
  }
  return codes;
}

e2eTest("three failures lock an account across restarts; admin unlock clears it", async (f) => {
  await f.register(EMAIL, GOOD_PASSWORD);
  assert.deepEqual(await failLogins(f, EMAIL, 3), [3, 3, 4]);
  const locked = await f.as(EMAIL, GOOD_PASSWORD, ["login"]);
  assert.equal(locked.code, 4, locked.stderr);
  assert.match(locked.stderr, /until \d{4}-\d\d-\d\dT/);
  // A restart does not reset the lock.
  await f.server.stop();
  const restarted = await ServerProcess.start({
    dataDir: f.server.dataDir,
    dbUrl: f.server.dbUrl,
    args: ["--port", String(f.server.port)],
  });
  try {
    const g = { ...f, server: restarted } as Fixture;
    const still = await runCloud([
      "connect",
      "--host",
      restarted.address,
      "--fingerprint",
      `sha256:${restarted.fingerprint}`,
      "--email",
      EMAIL,
      "login",
    ], { env: { CLOUD_CONFIG_DIR: g.configDir, CLOUD_PASSWORD: GOOD_PASSWORD } });
    assert.equal(still.code, 4, still.stderr);
    const unlock = await f.admin(["unlock", EMAIL]);
    assert.equal(unlock.code, 0, unlock.stderr);
    const ok = await runCloud([
      "connect",
      "--host",
      restarted.address,
      "--fingerprint",
      `sha256:${restarted.fingerprint}`,
      "--email",
      EMAIL,
      "login",
    ], { env: { CLOUD_CONFIG_DIR: g.configDir, CLOUD_PASSWORD: GOOD_PASSWORD } });
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    await restarted.stop();
  }
});

e2eTest("an unknown email locks the same way, revealing nothing", async (f) => {
  assert.deepEqual(await failLogins(f, "ghost@example.com", 4), [3, 3, 4, 4]);
});

e2eTest("a source that logged in before is exempt from the account lock", async (f) => {
  await f.register(EMAIL, GOOD_PASSWORD);
  assert.equal((await f.as(EMAIL, GOOD_PASSWORD, ["login"])).code, 0);
  assert.deepEqual(await failLogins(f, EMAIL, 3), [3, 3, 3]);
  assert.equal((await f.as(EMAIL, GOOD_PASSWORD, ["login"])).code, 0);
});

e2eTest("passwd changes the password; the old one stops working", async (f) => {
  await f.register(EMAIL, GOOD_PASSWORD);
  const newPassword = "Fresh-Lighthouse-Orbit-7";
  const change = await f.as(EMAIL, GOOD_PASSWORD, ["passwd"], {
    env: { CLOUD_NEW_PASSWORD: newPassword },
  });
  assert.equal(change.code, 0, change.stderr);
  assert.equal((await f.as(EMAIL, GOOD_PASSWORD, ["login"])).code, 3);
  assert.equal((await f.as(EMAIL, newPassword, ["login"])).code, 0);
  const weak = await f.as(EMAIL, newPassword, ["passwd"], {
    env: { CLOUD_NEW_PASSWORD: "password1" },
  });
  assert.equal(weak.code, 2);
});

e2eTest("--password-stdin reads the password from stdin", async (f) => {
  await f.register(EMAIL, GOOD_PASSWORD);
  const r = await f.connect(["--email", EMAIL, "--password-stdin", "whoami"], {
    stdin: `${GOOD_PASSWORD}\n`,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^ada@example\.com\t/);
});

e2eTest("admin users lists accounts; delete-user removes one", async (f) => {
  await f.register(EMAIL, GOOD_PASSWORD, "Ada");
  await f.register("bob@example.com", "Bobs-Long-Password-77", "Bob");
  const users = JSON.parse((await f.admin(["users", "--json"])).stdout);
  assert.deepEqual(users.map((u: { email: string }) => u.email).sort(), [EMAIL, "bob@example.com"]);
  assert.equal((await f.admin(["delete-user", "bob@example.com"])).code, 0);
  assert.equal((await f.as("bob@example.com", "Bobs-Long-Password-77", ["login"])).code, 3);
  assert.equal((await f.admin(["delete-user", "bob@example.com"])).code, 5);
});

Deno.test("a server that does not answer gives exit 9 within a few seconds", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // nothing listens there now
  const dir = await Deno.makeTempDir();
  try {
    const started = performance.now();
    const r = await runCloud(["connect", "--host", `127.0.0.1:${port}`, "--trust", "whoami"], {
      env: { CLOUD_CONFIG_DIR: dir, CLOUD_PASSWORD: "x", CLOUD_EMAIL: "a@b.c" },
    });
    assert.equal(r.code, 9, r.stderr);
    assert.match(r.stderr, /127\.0\.0\.1/);
    assert.ok(performance.now() - started < 8000);

    // A listener that accepts TCP but never speaks TLS.
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const held: Deno.Conn[] = [];
    (async () => {
      for await (const c of silent) held.push(c);
    })();
    const t0 = performance.now();
    const r2 = await runCloud([
      "connect",
      "--host",
      `127.0.0.1:${(silent.addr as Deno.NetAddr).port}`,
      "--trust",
      "--timeout",
      "2s",
      "whoami",
    ], { env: { CLOUD_CONFIG_DIR: dir, CLOUD_PASSWORD: "x", CLOUD_EMAIL: "a@b.c" } });
    assert.equal(r2.code, 9, r2.stderr);
    assert.ok(performance.now() - t0 < 8000);
    silent.close();
    for (const c of held) c.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "a changed server certificate is refused with exit 9 showing both fingerprints",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const config = join(dir, "config");
    const first = await ServerProcess.start({ dataDir: join(dir, "a") });
    const port = first.port;
    const trusted = await runCloud(
      ["connect", "--host", first.address, "--trust", "--email", EMAIL, "login"],
      { env: { CLOUD_CONFIG_DIR: config, CLOUD_PASSWORD: GOOD_PASSWORD } },
    );
    assert.equal(trusted.code, 3, trusted.stderr); // trusted and pinned, then no such account
    const oldFp = first.fingerprint;
    await first.stop();
    const second = await ServerProcess.start({
      dataDir: join(dir, "b"),
      args: ["--port", String(port)],
    });
    try {
      assert.notEqual(second.fingerprint, oldFp);
      const r = await runCloud(["connect", "--host", second.address, "--email", EMAIL, "login"], {
        env: { CLOUD_CONFIG_DIR: config, CLOUD_PASSWORD: GOOD_PASSWORD },
      });
      assert.equal(r.code, 9);
      assert.ok(r.stderr.includes(oldFp), r.stderr);
      assert.ok(r.stderr.includes(second.fingerprint), r.stderr);
      // Not even --trust overrides a changed pin.
      const forced = await runCloud(
        ["connect", "--host", second.address, "--trust", "--email", EMAIL, "login"],
        { env: { CLOUD_CONFIG_DIR: config, CLOUD_PASSWORD: GOOD_PASSWORD } },
      );
      assert.equal(forced.code, 9);
      // No credential reached the new server.
      assert.ok(!second.lines.some((l) => l.includes("auth_")), second.lines.join("\n"));
    } finally {
      await second.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("usage errors exit 2 before any connection is tried", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [string[], RegExp][] = [
      [["register"], /--name NAME and --phone PHONE/],
      [["mv", "only-one"], /FROM and TO/],
      [["put"], /at least one/],
      [["df", "extra"], /no arguments/],
      [["frobnicate"], /Unknown command "frobnicate"/],
    ];
    for (const [args, message] of cases) {
      // Port 1 on loopback: nothing listens, so exit 9 would mean it tried to connect.
      const r = await runCloud(["connect", "--host", "127.0.0.1:1", ...args], {
        env: { CLOUD_CONFIG_DIR: dir, CLOUD_PASSWORD: "x", CLOUD_EMAIL: "a@b.c" },
      });
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

import assert from "node:assert/strict";
import { join } from "node:path";
import { CloudClient } from "../../client/client.ts";
import { CloudError } from "../../protocol/errors.ts";
import type { ServerContext } from "../../server/context.ts";
import { openStore } from "../../server/db/open.ts";
import { accountHandlers } from "../../server/handlers/accounts.ts";
import { fileHandlers } from "../../server/handlers/files.ts";
import { HasherPool } from "../../server/hasher.ts";
import { LoginGuard } from "../../server/lockout.ts";
import { Logger } from "../../server/log.ts";
import { runSession, type SessionTimeouts } from "../../server/session.ts";
import { LocalStorage } from "../../server/storage_local.ts";

/** A server context on a temp dir with SQLite, and a way to open in-memory sessions. */
async function harness(timeouts?: SessionTimeouts) {
  const dir = await Deno.makeTempDir({ prefix: "cloud-session-" });
  const store = await openStore(`sqlite:${join(dir, "cloud.db")}`);
  const lines: string[] = [];
  const hasher = new HasherPool({ cost: 4, size: 1 });
  const ctx: ServerContext = {
    store,
    storage: new LocalStorage(dir),
    hasher,
    guard: new LoginGuard(store),
    log: new Logger("text", (line) => lines.push(line)),
    reserved: new Map(),
    limits: { serverName: "test", defaultQuota: null, maxFileSize: null, maxInlineBytes: 1 << 20 },
  };
  const sessions: Promise<void>[] = [];
  const shutdown = new AbortController();
  return {
    ctx,
    lines,
    shutdown,
    /** Joins a client and a session with in-memory streams. */
    async open(): Promise<CloudClient> {
      const toServer = new TransformStream<Uint8Array, Uint8Array>();
      const toClient = new TransformStream<Uint8Array, Uint8Array>();
      sessions.push(
        runSession(ctx, { readable: toServer.readable, writable: toClient.writable }, {
          address: "192.0.2.7",
          handlers: { ...accountHandlers, ...fileHandlers },
          signal: shutdown.signal,
          ...(timeouts ? { timeouts } : {}),
        }),
      );
      return await CloudClient.open({ readable: toClient.readable, writable: toServer.writable });
    },
    async close() {
      shutdown.abort();
      await Promise.all(sessions);
      hasher.close();
      await store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    if (error instanceof CloudError) return error.code;
    throw error;
  }
}

const PASSWORD = "Correct-Horse-Battery-42";

Deno.test("a session registers, logs in and answers whoami over in-memory streams", async () => {
  const h = await harness();
  try {
    const client = await h.open();
    assert.equal(client.server.name, "test");
    assert.equal(await codeOf(client.whoami()), "E_NOT_LOGGED_IN");
    await client.register({
      email: "Ada@Example.com",
      password: PASSWORD,
      name: "Ada",
      phone: "5550100",
    });
    assert.equal(
      await codeOf(
        client.register({
          email: "ada@example.com",
          password: PASSWORD,
          name: "A",
          phone: "5550100",
        }),
      ),
      "E_EXISTS",
    );
    assert.equal(await codeOf(client.login("ada@example.com", "Wrong-Password-1")), "E_AUTH");
    const login = await client.login("ada@example.com", PASSWORD);
    assert.equal(login.email, "ada@example.com");
    const me = await client.whoami();
    assert.equal(me.name, "Ada");
    await client.logout();
    assert.equal(await codeOf(client.whoami()), "E_NOT_LOGGED_IN");
    await client.close();
    // Audit rows and log lines exist, without the password.
    const audit = await h.ctx.store.listAudit(10);
    assert.deepEqual(
      audit.map((a) => a.event).reverse(),
      ["register", "register_exists", "auth_fail", "auth_ok"],
    );
    assert.ok(audit.every((a) => a.source === "192.0.2.7"));
    assert.ok(!h.lines.some((l) => l.includes(PASSWORD)));
    assert.ok(h.lines.some((l) => / auth_fail email=ada@example.com src=192\.0\.2\.7/.test(l)));
  } finally {
    await h.close();
  }
});

Deno.test("a session closes an idle unauthenticated connection with E_IDLE", async () => {
  const h = await harness({ unauthenticatedIdleMs: 50, authenticatedIdleMs: 10_000 });
  try {
    const client = await h.open();
    const frame = await client.reader.readFrame() as { t: string; code: string };
    assert.equal(frame.code, "E_IDLE");
    assert.equal(await client.reader.readFrame(), null);
    client.abort();
  } finally {
    await h.close();
  }
});

Deno.test("shutdown ends idle sessions with E_SHUTDOWN", async () => {
  const h = await harness();
  try {
    const client = await h.open();
    h.shutdown.abort();
    const frame = await client.reader.readFrame() as { t: string; code: string };
    assert.equal(frame.code, "E_SHUTDOWN");
    client.abort();
  } finally {
    await h.close();
  }
});

Deno.test("a body that stalls mid-way is cut off by the watchdog", async () => {
  const h = await harness({ unauthenticatedIdleMs: 1000, authenticatedIdleMs: 50 });
  try {
    const client = await h.open();
    await client.register({
      email: "ada@example.com",
      password: PASSWORD,
      name: "Ada",
      phone: "5550100",
    });
    await client.login("ada@example.com", PASSWORD);
    await client.writer.writeFrame({
      t: "put",
      path: "x",
      size: 100,
      sha256: "0".repeat(64),
      overwrite: false,
      mode: "inline",
    });
    await client.writer.writeBytes(new Uint8Array(10)); // then silence
    const started = performance.now();
    // The session closes without answering: the body never completed.
    assert.equal(await client.reader.readFrame().catch(() => null), null);
    assert.ok(performance.now() - started < 5000);
    assert.ok(h.lines.some((l) => / stall_close /.test(l)), h.lines.join("\n"));
    client.abort();
  } finally {
    await h.close();
  }
});

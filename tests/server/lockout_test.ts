/**
 * The lockout policy, run against the in-memory fake store, the real SQLite store and,
 * when CLOUD_TEST_MYSQL_URL is set, the real MySQL/MariaDB store. Every test uses fresh
 * emails and source addresses, so runs against a shared database do not interfere.
 */

import assert from "node:assert/strict";
import { CloudError, type ErrorCode } from "../../protocol/errors.ts";
import { openStore } from "../../server/db/open.ts";
import { LoginGuard, type LoginGuardOptions } from "../../server/lockout.ts";
import { sourceKey } from "../../server/source.ts";
import type { Store } from "../../server/store.ts";
import { FakeStore } from "./_fake_store.ts";

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

/** A store under test and how to simulate a restart. */
interface Backend {
  name: string;
  ignore: boolean;
  /** Opens a store; `reopen` closes it and opens the same database again. */
  open(): Promise<{ store: Store; reopen(): Promise<Store>; dispose(): Promise<void> }>;
}

const mysqlUrl = Deno.env.get("CLOUD_TEST_MYSQL_URL");

const BACKENDS: Backend[] = [
  {
    name: "fake",
    ignore: false,
    open() {
      const store = new FakeStore();
      return Promise.resolve({
        store,
        reopen: () => Promise.resolve(store),
        dispose: () => Promise.resolve(),
      });
    },
  },
  {
    name: "sqlite",
    ignore: false,
    async open() {
      const dir = await Deno.makeTempDir({ prefix: "cloud-lockout-" });
      const url = `sqlite:${dir}/cloud.db`;
      let store = await openStore(url);
      return {
        get store() {
          return store;
        },
        async reopen() {
          await store.close();
          store = await openStore(url);
          return store;
        },
        async dispose() {
          await store.close();
          await Deno.remove(dir, { recursive: true });
        },
      };
    },
  },
  {
    name: "mysql",
    ignore: mysqlUrl === undefined,
    async open() {
      let store = await openStore(mysqlUrl!);
      return {
        get store() {
          return store;
        },
        async reopen() {
          await store.close();
          store = await openStore(mysqlUrl!);
          return store;
        },
        async dispose() {
          await store.close();
        },
      };
    },
  },
];

/** A controllable clock starting at a fixed instant. */
class Clock {
  ms = Date.UTC(2030, 0, 1, 12, 0, 0);
  now = (): Date => new Date(this.ms);
  advance(ms: number): void {
    this.ms += ms;
  }
  plus(ms: number): Date {
    return new Date(this.ms + ms);
  }
}

/** Everything one test needs; tracks what it created so it can clean up a shared database. */
class Fixture {
  clock = new Clock();
  #run = crypto.randomUUID().slice(0, 8);
  #counter = 0;
  #emails: string[] = [];
  #sources: string[] = [];
  #users: number[] = [];

  constructor(public store: Store) {}

  guard(options: LoginGuardOptions = {}): LoginGuard {
    return new LoginGuard(this.store, { now: this.clock.now, ...options });
  }

  email(): string {
    const email = `lock-${this.#run}-${this.#counter++}@example.org`;
    this.#emails.push(email);
    return email;
  }

  /** A random IPv4 address in 10.0.0.0/8. */
  ipv4(): string {
    const [a = 0, b = 0, c = 0] = crypto.getRandomValues(new Uint8Array(3));
    const address = `10.${a}.${b}.${c}`;
    this.#sources.push(address);
    return address;
  }

  /**
   * A random IPv6 /56 inside 2001:db8::/32; returns a function giving the address whose
   * 4th group has the low byte `low` (free inside the /56) followed by `tail`.
   */
  ipv6Prefix(): (low: number, tail: string) => string {
    const [a = 0, b = 0] = crypto.getRandomValues(new Uint16Array(2));
    const address = (low: number, tail: string) =>
      `2001:db8:${a.toString(16)}:${((b & 0xff00) | (low & 0xff)).toString(16)}:${tail}`;
    this.#sources.push(address(0, ":1"));
    return address;
  }

  async user(): Promise<{ id: number; email: string }> {
    const email = this.email();
    const id = await this.store.createUser({
      name: "Lock Test",
      email,
      phone: "+1 555 0100",
      passwordHash: "$2b$04$" + "a".repeat(53),
    });
    this.#users.push(id);
    return { id, email };
  }

  async cleanup(): Promise<void> {
    const guard = new LoginGuard(this.store);
    for (const id of this.#users) await this.store.deleteUser(id);
    for (const email of this.#emails) await guard.unlock(email);
    for (const source of this.#sources) await guard.unblock(source);
  }
}

async function refused(promise: Promise<unknown>, code: ErrorCode): Promise<CloudError> {
  const error = await promise.then(
    () => assert.fail(`expected ${code}, but the attempt was allowed`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof CloudError, `expected a CloudError, got ${error}`);
  assert.equal(error.code, code);
  return error;
}

/** Records `n` failures and returns the last outcome. */
async function fail(
  guard: LoginGuard,
  n: number,
  email: string,
  source: string,
  userId: number | null,
) {
  let outcome;
  for (let i = 0; i < n; i++) outcome = await guard.recordFailure(email, source, userId);
  return outcome!;
}

function lockoutTest(
  backend: Backend,
  name: string,
  body: (f: Fixture, reopen: () => Promise<Store>) => Promise<void>,
): void {
  Deno.test({
    name: `[${backend.name}] ${name}`,
    ignore: backend.ignore,
    async fn() {
      const handle = await backend.open();
      const fixture = new Fixture(handle.store);
      try {
        await body(fixture, async () => {
          fixture.store = await handle.reopen();
          return fixture.store;
        });
      } finally {
        try {
          await fixture.cleanup();
        } finally {
          await handle.dispose();
        }
      }
    },
  });
}

for (const backend of BACKENDS) {
  lockoutTest(
    backend,
    "3 failures lock the email; the 4th attempt is refused until +15 min (E_LOCKED)",
    async (f) => {
      const guard = f.guard();
      const email = f.email();
      const source = f.ipv4();
      await guard.check(email, source, null);
      assert.deepEqual(await guard.recordFailure(email, source, null), {
        failures: 1,
        exempt: false,
      });
      assert.deepEqual(await guard.recordFailure(email, source, null), {
        failures: 2,
        exempt: false,
      });
      await guard.check(email, source, null);
      const third = await guard.recordFailure(email, source, null);
      assert.deepEqual(third, { failures: 0, exempt: false, locked: f.clock.plus(15 * MIN) });

      const error = await refused(guard.check(email, source, null), "E_LOCKED");
      const retryAt = f.clock.plus(15 * MIN).toISOString();
      assert.equal(error.details.retryAt, retryAt);
      assert.equal(
        error.message,
        `Too many failed logins for "${email}": locked until ${retryAt} (in 15 min)`,
      );
      // Another source, and the email typed in another case, are refused the same way.
      await refused(guard.check(email.toUpperCase(), f.ipv4(), null), "E_LOCKED");

      f.clock.advance(15 * MIN - 1);
      await refused(guard.check(email, source, null), "E_LOCKED");
      f.clock.advance(1);
      await guard.check(email, source, null);
    },
  );

  lockoutTest(
    backend,
    "each further lock doubles: 15, 30, 60 min ... capped at 24 h",
    async (f) => {
      const guard = f.guard();
      const email = f.email();
      const source = f.ipv4();
      const expected = [15, 30, 60, 120, 240, 480, 960, 1440, 1440, 1440].map((m) => m * MIN);
      for (const ms of expected) {
        const outcome = await fail(guard, 3, email, source, null);
        assert.deepEqual(outcome.locked, f.clock.plus(ms));
        const error = await refused(guard.check(email, source, null), "E_LOCKED");
        assert.equal(error.details.retryAt, f.clock.plus(ms).toISOString());
        f.clock.advance(ms);
        await guard.check(email, source, null);
        // Keep the source under its own limit: this test is about the email.
        await guard.unblock(source);
      }
      assert.equal((await f.store.getEmailLock(email)).lockCount, expected.length);
    },
  );

  lockoutTest(
    backend,
    "an unknown email locks exactly like an existing one (no enumeration)",
    async (f) => {
      const guard = f.guard();
      const user = await f.user();
      const unknown = f.email();
      const source = f.ipv4();
      const outcomes = [];
      for (const [email, id] of [[user.email, user.id], [unknown, null]] as const) {
        outcomes.push([
          await guard.recordFailure(email, source, id),
          await guard.recordFailure(email, source, id),
          await guard.recordFailure(email, source, id),
        ]);
      }
      assert.deepEqual(outcomes[0], outcomes[1]);
      const a = await refused(guard.check(user.email, source, user.id), "E_LOCKED");
      const b = await refused(guard.check(unknown, source, null), "E_LOCKED");
      assert.deepEqual(a.details, b.details);
      assert.equal(a.message.replace(user.email, "EMAIL"), b.message.replace(unknown, "EMAIL"));
    },
  );

  lockoutTest(backend, "a success resets the failures and the doubling", async (f) => {
    const guard = f.guard();
    const user = await f.user();
    const source = f.ipv4();
    const other = f.ipv4();
    await fail(guard, 2, user.email, other, null);
    await guard.recordSuccess(user.email, source, user.id);
    assert.deepEqual(await f.store.getEmailLock(user.email), {
      failures: 0,
      lockedUntil: null,
      lockCount: 0,
    });
    assert.deepEqual(await fail(guard, 2, user.email, other, null), { failures: 2, exempt: false });
    await guard.check(user.email, other, null);

    // Lock twice (15 then 30 min), log in after the second lock: the next lock is 15 min.
    assert.deepEqual(
      (await fail(guard, 1, user.email, other, null)).locked,
      f.clock.plus(15 * MIN),
    );
    f.clock.advance(15 * MIN);
    assert.deepEqual(
      (await fail(guard, 3, user.email, other, null)).locked,
      f.clock.plus(30 * MIN),
    );
    f.clock.advance(30 * MIN);
    await guard.recordSuccess(user.email, f.ipv4(), user.id);
    assert.deepEqual(
      (await fail(guard, 3, user.email, other, null)).locked,
      f.clock.plus(15 * MIN),
    );
  });

  lockoutTest(
    backend,
    "a known source is exempt from the account lock but not from the source block",
    async (f) => {
      const guard = f.guard();
      const user = await f.user();
      const home = f.ipv4();
      const attacker = f.ipv4();
      await guard.recordSuccess(user.email, home, user.id);
      f.clock.advance(DAY);

      // The attacker locks the account: refused for the attacker, not for the owner's home.
      const locked = (await fail(guard, 3, user.email, attacker, user.id)).locked;
      assert.deepEqual(locked, f.clock.plus(15 * MIN));
      await refused(guard.check(user.email, attacker, user.id), "E_LOCKED");
      await guard.check(user.email, home, user.id);
      // The exemption needs the account: the same email typed without a match is locked.
      await refused(guard.check(user.email, home, null), "E_LOCKED");

      // The owner mistyping at home neither locks the account nor extends the lock.
      const mistype = await guard.recordFailure(user.email, home, user.id);
      assert.deepEqual(mistype, { failures: 0, exempt: true });
      assert.deepEqual((await f.store.getEmailLock(user.email)).lockedUntil, locked);

      // Logging in from home during the lock keeps the lock for the attacker.
      await guard.recordSuccess(user.email, home, user.id);
      await refused(guard.check(user.email, attacker, user.id), "E_LOCKED");

      // But home is still subject to the per-source limit: failures 2..21 in 10 min block it.
      const outcome = await fail(guard, 20, user.email, home, user.id);
      assert.deepEqual(outcome, { failures: 0, exempt: true, blocked: f.clock.plus(15 * MIN) });
      await refused(guard.check(user.email, home, user.id), "E_BLOCKED");
    },
  );

  lockoutTest(
    backend,
    "a source is known for 30 days after its last successful login",
    async (f) => {
      const guard = f.guard();
      const user = await f.user();
      const home = f.ipv4();
      const attacker = f.ipv4();
      await guard.recordSuccess(user.email, home, user.id);
      f.clock.advance(30 * DAY);
      await fail(guard, 3, user.email, attacker, null);
      await guard.check(user.email, home, user.id);
      f.clock.advance(1);
      await refused(guard.check(user.email, home, user.id), "E_LOCKED");
      // Another account's known source does not count for this one.
      const other = await f.user();
      await guard.recordSuccess(other.email, attacker, other.id);
      await refused(guard.check(user.email, attacker, user.id), "E_LOCKED");
    },
  );

  lockoutTest(
    backend,
    "the 21st failure from one source within 10 min blocks it for 15 min (E_BLOCKED)",
    async (f) => {
      const guard = f.guard();
      const source = f.ipv4();
      for (let i = 0; i < 20; i++) {
        // A different email each time: the per-source limit is independent of the emails.
        const outcome = await guard.recordFailure(f.email(), source, null);
        assert.equal(outcome.blocked, undefined, `failure ${i + 1}`);
        f.clock.advance(20_000);
      }
      await guard.check(f.email(), source, null);
      const outcome = await guard.recordFailure(f.email(), source, null);
      const until = f.clock.plus(15 * MIN);
      assert.deepEqual(outcome.blocked, until);

      const error = await refused(guard.check(f.email(), source, null), "E_BLOCKED");
      assert.equal(error.details.retryAt, until.toISOString());
      assert.equal(
        error.message,
        `Too many failed logins from "${source}": blocked until ${until.toISOString()} (in 15 min)`,
      );
      // Other sources are not affected; an IPv4-mapped form of the same address is.
      await guard.check(f.email(), f.ipv4(), null);
      await refused(guard.check(f.email(), `::ffff:${source}`, null), "E_BLOCKED");

      f.clock.advance(15 * MIN - 1);
      await refused(guard.check(f.email(), source, null), "E_BLOCKED");
      f.clock.advance(1);
      await guard.check(f.email(), source, null);
    },
  );

  lockoutTest(backend, "source failures older than 10 min do not count", async (f) => {
    const guard = f.guard();
    const source = f.ipv4();
    await fail(guard, 1, f.email(), source, null);
    f.clock.advance(MIN);
    for (let i = 0; i < 19; i++) await guard.recordFailure(f.email(), source, null);
    // The first failure is now older than 10 min; 19 + this one = 20 in the window.
    f.clock.advance(9 * MIN + 1);
    assert.equal((await guard.recordFailure(f.email(), source, null)).blocked, undefined);
    await guard.check(f.email(), source, null);
    // The next one is the 21st inside the window.
    assert.deepEqual(
      (await guard.recordFailure(f.email(), source, null)).blocked,
      f.clock.plus(15 * MIN),
    );
  });

  lockoutTest(backend, "IPv6 addresses in the same /56 share one source counter", async (f) => {
    const guard = f.guard();
    const inPrefix = f.ipv6Prefix();
    let outcome;
    for (let i = 0; i < 21; i++) {
      outcome = await guard.recordFailure(f.email(), inPrefix(i * 7, `${i.toString(16)}::1`), null);
    }
    assert.deepEqual(outcome?.blocked, f.clock.plus(15 * MIN));
    const error = await refused(
      guard.check(f.email(), inPrefix(0xff, "ffff:1:2:3"), null),
      "E_BLOCKED",
    );
    assert.ok(error.message.includes(sourceKey(inPrefix(0, ":1"))));
    // A different /56 is not blocked.
    await guard.check(f.email(), f.ipv6Prefix()(1, ":1"), null);
  });

  lockoutTest(backend, "unlock() and unblock() clear a lock and a block", async (f) => {
    const guard = f.guard();
    const email = f.email();
    const source = f.ipv4();
    await fail(guard, 3, email, f.ipv4(), null);
    for (let i = 0; i < 21; i++) await guard.recordFailure(f.email(), source, null);
    await refused(guard.check(email, f.ipv4(), null), "E_LOCKED");
    await refused(guard.check(f.email(), source, null), "E_BLOCKED");

    assert.equal(await guard.unlock(email.toUpperCase()), true);
    await guard.check(email, f.ipv4(), null);
    assert.equal(await guard.unlock(email), false);
    // The doubling was reset too: the next lock is 15 min again.
    assert.deepEqual((await fail(guard, 3, email, f.ipv4(), null)).locked, f.clock.plus(15 * MIN));

    assert.equal(await guard.unblock(source), true);
    await guard.check(f.email(), source, null);
    // Its failures were cleared as well: one more failure does not block again.
    assert.equal((await guard.recordFailure(f.email(), source, null)).blocked, undefined);
    assert.equal(await guard.unblock(f.ipv4()), false);

    const error = await refused(guard.unblock("not-an-address"), "E_INVALID");
    assert.equal(error.message, `Invalid address "not-an-address"`);
  });

  lockoutTest(backend, "unblock() of any address in a /56 clears the whole /56", async (f) => {
    const guard = f.guard();
    const inPrefix = f.ipv6Prefix();
    for (let i = 0; i < 21; i++) await guard.recordFailure(f.email(), inPrefix(1, "2::3"), null);
    await refused(guard.check(f.email(), inPrefix(4, "5::6"), null), "E_BLOCKED");
    assert.equal(await guard.unblock(inPrefix(0xee, "ff::1")), true);
    await guard.check(f.email(), inPrefix(1, "2::3"), null);
  });

  lockoutTest(
    backend,
    "locks and blocks survive a new LoginGuard and a reopened store",
    async (f, reopen) => {
      const email = f.email();
      const source = f.ipv4();
      let guard = f.guard();
      await fail(guard, 2, email, f.ipv4(), null);
      for (let i = 0; i < 21; i++) await guard.recordFailure(f.email(), source, null);

      // "Restart": a new guard on a freshly opened store of the same database.
      await reopen();
      guard = f.guard();
      // The 2 failures were kept: one more locks.
      assert.deepEqual(
        (await guard.recordFailure(email, f.ipv4(), null)).locked,
        f.clock.plus(15 * MIN),
      );
      await refused(guard.check(f.email(), source, null), "E_BLOCKED");

      await reopen();
      guard = f.guard();
      await refused(guard.check(email, f.ipv4(), null), "E_LOCKED");
      await refused(guard.check(f.email(), source, null), "E_BLOCKED");
    },
  );
}

Deno.test("LoginGuard refuses non-positive options (RangeError)", () => {
  const store = new FakeStore();
  assert.throws(() => new LoginGuard(store, { emailMaxFailures: 0 }), RangeError);
  assert.throws(() => new LoginGuard(store, { sourceWindowMs: -1 }), RangeError);
  assert.throws(() => new LoginGuard(store, { knownSourceDays: Number.NaN }), RangeError);
  assert.throws(() => new LoginGuard(store, { emailMaxLockMs: Infinity }), RangeError);
});

Deno.test("LoginGuard honours custom thresholds", async () => {
  const store = new FakeStore();
  const clock = new Clock();
  const guard = new LoginGuard(store, {
    now: clock.now,
    emailMaxFailures: 5,
    emailBaseLockMs: MIN,
    emailMaxLockMs: 3 * MIN,
    sourceMaxFailures: 100,
  });
  const email = "custom@example.org";
  assert.equal((await fail(guard, 4, email, "192.0.2.1", null)).locked, undefined);
  assert.deepEqual((await fail(guard, 1, email, "192.0.2.1", null)).locked, clock.plus(MIN));
  clock.advance(MIN);
  assert.deepEqual((await fail(guard, 5, email, "192.0.2.1", null)).locked, clock.plus(2 * MIN));
  clock.advance(2 * MIN);
  assert.deepEqual((await fail(guard, 5, email, "192.0.2.1", null)).locked, clock.plus(3 * MIN));
});

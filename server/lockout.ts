/**
 * The brute-force policy of SPEC.md section 3, kept entirely in the {@link Store} so that
 * reconnecting, restarting or running several servers on one database changes nothing.
 *
 * Per email (the normalised string typed, whether or not an account has it, so that a lock
 * reveals nothing): 3 consecutive failures lock it for 15 minutes, each further lock twice
 * as long (15, 30, 60 min ...), at most 24 h. Per source (IPv4 /32, IPv6 /56, see
 * {@link sourceKey}): more than 20 failures within 10 minutes block it for 15 minutes.
 *
 * Known sources: a source that logged in to the account successfully in the last 30 days
 * is exempt from that account's lock (NIST 800-63B), so an attacker cannot lock the owner
 * out. Decisions:
 * - A failure from a known source still counts toward the source limit but does not count
 *   toward the email's failures: the owner mistyping at home never locks the account, and
 *   the 20-per-10-minutes source limit bounds guessing from there.
 * - A success resets the email's failures and the doubling (the owner is proven) — except
 *   while a lock is in force, which a known source can log in through: then the lock
 *   stays, because it is holding back someone else.
 * - Only attempts whose password was actually checked are failures: call
 *   {@link LoginGuard.recordFailure} after a wrong password, never for an attempt
 *   {@link LoginGuard.check} refused (or the block would extend itself forever).
 *
 * Concurrency: the email counter is incremented atomically by the store; two failures
 * racing past the threshold at once can lock twice, which only lengthens the lock.
 *
 * @module
 */

import { CloudError } from "../protocol/errors.ts";
import { sourceKey } from "./source.ts";
import type { Store } from "./store.ts";
import { normaliseEmail } from "./validation.ts";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Options of {@link LoginGuard}; every field has the SPEC.md default. */
export interface LoginGuardOptions {
  /** The clock. Default `() => new Date()`. */
  now?: () => Date;
  /** Consecutive failures that lock an email. Default 3. */
  emailMaxFailures?: number;
  /** First lock's length in ms; each further lock doubles it. Default 15 min. */
  emailBaseLockMs?: number;
  /** Longest lock in ms. Default 24 h. */
  emailMaxLockMs?: number;
  /** A source is blocked when it has MORE failures than this within the window. Default 20. */
  sourceMaxFailures?: number;
  /** The window the source failures are counted in, ms. Default 10 min. */
  sourceWindowMs?: number;
  /** Length of a source block, ms. Default 15 min. */
  sourceBlockMs?: number;
  /** A source with a successful login this many days back is exempt from the account lock. Default 30. */
  knownSourceDays?: number;
}

/** What {@link LoginGuard.recordFailure} did, for the caller to log and audit. */
export interface FailureOutcome {
  /** The email's consecutive failures after this one (0 when it just locked or was exempt). */
  failures: number;
  /** True when the source is a known source of the account: the email counter was not touched. */
  exempt: boolean;
  /** Set when this failure locked the email: until when. */
  locked?: Date;
  /** Set when this failure blocked the source: until when. */
  blocked?: Date;
}

/**
 * Decides whether a login attempt may proceed and records its outcome.
 *
 * @example
 * ```ts
 * const guard = new LoginGuard(store);
 * await guard.check(email, address, user?.id ?? null); // throws E_BLOCKED / E_LOCKED
 * if (passwordOk) await guard.recordSuccess(email, address, user.id);
 * else await guard.recordFailure(email, address, user?.id ?? null);
 * ```
 */
export class LoginGuard {
  readonly #store: Store;
  readonly #now: () => Date;
  readonly #emailMaxFailures: number;
  readonly #emailBaseLockMs: number;
  readonly #emailMaxLockMs: number;
  readonly #sourceMaxFailures: number;
  readonly #sourceWindowMs: number;
  readonly #sourceBlockMs: number;
  readonly #knownSourceMs: number;

  constructor(store: Store, options: LoginGuardOptions = {}) {
    this.#store = store;
    this.#now = options.now ?? (() => new Date());
    this.#emailMaxFailures = positive("emailMaxFailures", options.emailMaxFailures ?? 3);
    this.#emailBaseLockMs = positive("emailBaseLockMs", options.emailBaseLockMs ?? 15 * MINUTE);
    this.#emailMaxLockMs = positive("emailMaxLockMs", options.emailMaxLockMs ?? DAY);
    this.#sourceMaxFailures = positive("sourceMaxFailures", options.sourceMaxFailures ?? 20);
    this.#sourceWindowMs = positive("sourceWindowMs", options.sourceWindowMs ?? 10 * MINUTE);
    this.#sourceBlockMs = positive("sourceBlockMs", options.sourceBlockMs ?? 15 * MINUTE);
    this.#knownSourceMs = positive("knownSourceDays", options.knownSourceDays ?? 30) * DAY;
  }

  /**
   * Call before checking a password. Throws CloudError E_BLOCKED when the source is
   * blocked, E_LOCKED when the email is locked and the source is not a known source of
   * `userId`; both carry `retryAt` (ISO 8601) and say when to retry.
   *
   * @param email The email as typed (normalised here).
   * @param source The remote address or its {@link sourceKey}.
   * @param userId The account with that email, or null when there is none.
   */
  async check(email: string, source: string, userId: number | null): Promise<void> {
    const key = sourceKey(source);
    const now = this.#now();
    const blockedUntil = await this.#store.getSourceBlock(key);
    if (blockedUntil !== null && blockedUntil > now) {
      throw new CloudError(
        "E_BLOCKED",
        `Too many failed logins from "${key}": blocked until ${blockedUntil.toISOString()} ` +
          `(${untilText(now, blockedUntil)})`,
        { retryAt: blockedUntil.toISOString() },
      );
    }
    const normalised = normaliseEmail(email);
    const lock = await this.#store.getEmailLock(normalised);
    if (lock.lockedUntil !== null && lock.lockedUntil > now) {
      if (await this.#isKnown(userId, key, now)) return;
      throw new CloudError(
        "E_LOCKED",
        `Too many failed logins for "${normalised}": locked until ` +
          `${lock.lockedUntil.toISOString()} (${untilText(now, lock.lockedUntil)})`,
        { retryAt: lock.lockedUntil.toISOString() },
      );
    }
  }

  /**
   * Records a failed password check: one more failure of the source (blocking it when
   * over the limit) and, unless the source is a known source of `userId`, of the email
   * (locking it at the threshold).
   */
  async recordFailure(
    email: string,
    source: string,
    userId: number | null,
  ): Promise<FailureOutcome> {
    const key = sourceKey(source);
    const normalised = normaliseEmail(email);
    const now = this.#now();
    const outcome: FailureOutcome = { failures: 0, exempt: false };

    await this.#store.addSourceFailure(key, now);
    const recent = await this.#store.countSourceFailures(
      key,
      new Date(now.getTime() - this.#sourceWindowMs),
    );
    if (recent > this.#sourceMaxFailures) {
      outcome.blocked = new Date(now.getTime() + this.#sourceBlockMs);
      await this.#store.setSourceBlock(key, outcome.blocked);
    }

    if (await this.#isKnown(userId, key, now)) {
      outcome.exempt = true;
      return outcome;
    }
    const failures = await this.#store.addEmailFailure(normalised);
    if (failures < this.#emailMaxFailures) {
      outcome.failures = failures;
      return outcome;
    }
    const state = await this.#store.getEmailLock(normalised);
    if (state.lockedUntil !== null && state.lockedUntil > now) {
      // A concurrent failure locked it a moment ago.
      return outcome;
    }
    const ms = Math.min(this.#emailBaseLockMs * 2 ** state.lockCount, this.#emailMaxLockMs);
    outcome.locked = new Date(now.getTime() + ms);
    await this.#store.lockEmail(normalised, outcome.locked);
    return outcome;
  }

  /**
   * Records a successful login: the source becomes a known source of the account, and the
   * email's failures, lock and doubling are reset — unless a lock is in force (the login
   * came through a known source), which stays for everyone else.
   */
  async recordSuccess(email: string, source: string, userId: number): Promise<void> {
    const key = sourceKey(source);
    const normalised = normaliseEmail(email);
    const now = this.#now();
    await this.#store.recordKnownSource(userId, key, now);
    const lock = await this.#store.getEmailLock(normalised);
    if (lock.lockedUntil !== null && lock.lockedUntil > now) return;
    if (lock.failures > 0 || lock.lockedUntil !== null || lock.lockCount > 0) {
      await this.#store.resetEmailLock(normalised, true);
    }
  }

  /**
   * Clears the email's failures, lock and doubling (`cloud admin unlock`). Returns true
   * when there was anything to clear.
   */
  async unlock(email: string): Promise<boolean> {
    const normalised = normaliseEmail(email);
    const lock = await this.#store.getEmailLock(normalised);
    const had = lock.failures > 0 || lock.lockedUntil !== null || lock.lockCount > 0;
    await this.#store.resetEmailLock(normalised, true);
    return had;
  }

  /**
   * Clears the block and the recorded failures of the source that `address` belongs to
   * (`cloud admin unblock`). Returns true when there was anything to clear. Throws
   * CloudError E_INVALID when `address` is not an IP address or source key.
   */
  async unblock(address: string): Promise<boolean> {
    let key: string;
    try {
      key = sourceKey(address);
    } catch {
      throw new CloudError("E_INVALID", `Invalid address "${address}"`);
    }
    return await this.#store.clearSource(key);
  }

  async #isKnown(userId: number | null, key: string, now: Date): Promise<boolean> {
    if (userId === null) return false;
    return await this.#store.isKnownSource(
      userId,
      key,
      new Date(now.getTime() - this.#knownSourceMs),
    );
  }
}

function positive(name: string, value: number): number {
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`${name} must be a positive number, got ${value}`);
  }
  return value;
}

/** "in 15 min", "in 2 h 5 min", "in 30 s": a rounded-up wait for messages. */
function untilText(now: Date, until: Date): string {
  const seconds = Math.max(1, Math.ceil((until.getTime() - now.getTime()) / 1000));
  if (seconds < 60) return `in ${seconds} s`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `in ${minutes} min`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m === 0 ? `in ${h} h` : `in ${h} h ${m} min`;
}

/**
 * An in-memory {@link Store} for pure policy tests: users and the lockout state only.
 * Everything else throws. Not for production: the real stores are server/db/*.
 *
 * @module
 */

import { CloudError } from "../../protocol/errors.ts";
import type {
  AuditEvent,
  EmailLockState,
  FileRecord,
  NewUser,
  Store,
  User,
} from "../../server/store.ts";

function unsupported(name: string): never {
  throw new Error(`FakeStore does not implement ${name}()`);
}

/** Users, email locks, source failures and blocks, known sources and audit, in maps. */
export class FakeStore implements Store {
  readonly dialect = "sqlite" as const;
  #users = new Map<number, User>();
  #nextUserId = 1;
  #locks = new Map<string, EmailLockState>();
  #sourceFailures = new Map<string, Date[]>();
  #sourceBlocks = new Map<string, Date>();
  #known = new Map<string, Date>();
  #audit: AuditEvent[] = [];

  migrate(): Promise<string[]> {
    return Promise.resolve([]);
  }

  createUser(user: NewUser): Promise<number> {
    for (const u of this.#users.values()) {
      if (u.email === user.email) {
        return Promise.reject(new CloudError("E_EXISTS", `Email "${user.email}" is taken`));
      }
    }
    const id = this.#nextUserId++;
    this.#users.set(id, { ...user, id, createdAt: new Date(), quotaBytes: null });
    return Promise.resolve(id);
  }

  findUserByEmail(email: string): Promise<User | null> {
    return Promise.resolve([...this.#users.values()].find((u) => u.email === email) ?? null);
  }

  findUserById(id: number): Promise<User | null> {
    return Promise.resolve(this.#users.get(id) ?? null);
  }

  listUsers(): Promise<User[]> {
    return Promise.resolve([...this.#users.values()]);
  }

  setPasswordHash(): Promise<void> {
    unsupported("setPasswordHash");
  }

  setQuota(): Promise<void> {
    unsupported("setQuota");
  }

  deleteUser(userId: number): Promise<void> {
    this.#users.delete(userId);
    for (const key of [...this.#known.keys()]) {
      if (key.startsWith(`${userId} `)) this.#known.delete(key);
    }
    return Promise.resolve();
  }

  getEmailLock(email: string): Promise<EmailLockState> {
    const lock = this.#locks.get(email);
    return Promise.resolve(lock ? { ...lock } : { failures: 0, lockedUntil: null, lockCount: 0 });
  }

  addEmailFailure(email: string): Promise<number> {
    const lock = this.#locks.get(email) ?? { failures: 0, lockedUntil: null, lockCount: 0 };
    lock.failures++;
    this.#locks.set(email, lock);
    return Promise.resolve(lock.failures);
  }

  lockEmail(email: string, until: Date): Promise<void> {
    const lock = this.#locks.get(email) ?? { failures: 0, lockedUntil: null, lockCount: 0 };
    this.#locks.set(email, { failures: 0, lockedUntil: until, lockCount: lock.lockCount + 1 });
    return Promise.resolve();
  }

  resetEmailLock(email: string, full = false): Promise<void> {
    const lock = this.#locks.get(email);
    if (full) this.#locks.delete(email);
    else if (lock) this.#locks.set(email, { ...lock, failures: 0, lockedUntil: null });
    return Promise.resolve();
  }

  addSourceFailure(source: string, at: Date): Promise<void> {
    const list = this.#sourceFailures.get(source) ?? [];
    list.push(at);
    this.#sourceFailures.set(source, list);
    return Promise.resolve();
  }

  countSourceFailures(source: string, since: Date): Promise<number> {
    const list = this.#sourceFailures.get(source) ?? [];
    return Promise.resolve(list.filter((at) => at >= since).length);
  }

  getSourceBlock(source: string): Promise<Date | null> {
    return Promise.resolve(this.#sourceBlocks.get(source) ?? null);
  }

  setSourceBlock(source: string, until: Date): Promise<void> {
    this.#sourceBlocks.set(source, until);
    return Promise.resolve();
  }

  clearSource(source: string): Promise<boolean> {
    const had = this.#sourceBlocks.has(source) || this.#sourceFailures.has(source);
    this.#sourceBlocks.delete(source);
    this.#sourceFailures.delete(source);
    return Promise.resolve(had);
  }

  recordKnownSource(userId: number, source: string, at: Date): Promise<void> {
    this.#known.set(`${userId} ${source}`, at);
    return Promise.resolve();
  }

  isKnownSource(userId: number, source: string, since: Date): Promise<boolean> {
    const at = this.#known.get(`${userId} ${source}`);
    return Promise.resolve(at !== undefined && at >= since);
  }

  audit(event: AuditEvent): Promise<void> {
    this.#audit.push(event);
    return Promise.resolve();
  }

  listAudit(limit: number): Promise<AuditEvent[]> {
    return Promise.resolve(this.#audit.slice(-limit).reverse());
  }

  putFile(_file: FileRecord): Promise<void> {
    unsupported("putFile");
  }
  getFile(): Promise<FileRecord | null> {
    unsupported("getFile");
  }
  listFiles(): Promise<FileRecord[]> {
    unsupported("listFiles");
  }
  allFiles(): Promise<FileRecord[]> {
    unsupported("allFiles");
  }
  deleteFile(): Promise<boolean> {
    unsupported("deleteFile");
  }
  deleteTree(): Promise<number> {
    unsupported("deleteTree");
  }
  renamePath(): Promise<void> {
    unsupported("renamePath");
  }
  usage(): Promise<{ bytes: number; files: number }> {
    unsupported("usage");
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

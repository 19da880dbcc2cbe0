/**
 * The {@link Store} on the embedded SQLite database (`node:sqlite`), the default.
 *
 * The database runs in WAL mode with `synchronous=NORMAL`, a busy timeout and foreign keys
 * on. `DatabaseSync` is synchronous, so every method does its work, transactions included,
 * without yielding to the event loop: nothing else in this process can interleave. Other
 * processes are kept out by SQLite's locks (`BEGIN IMMEDIATE` for every write
 * transaction, waiting up to the busy timeout).
 *
 * @module
 */

import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import { CloudError } from "../../protocol/errors.ts";
import { type Migration, MIGRATIONS } from "../../sql/mod.ts";
import type { AuditEvent, EmailLockState, FileRecord, NewUser, Store, User } from "../store.ts";
import {
  checkInteger,
  pendingMigrations,
  renamedPath,
  subtreeRange,
  toDate,
  toDateOrNull,
  toMillis,
  toNumber,
  toNumberOrNull,
  toStringOrNull,
} from "./_internal.ts";

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** How long to wait for another process's lock, in milliseconds. Default 5000. */
  busyTimeoutMs?: number;
  /** Migrations to apply; default the built-in list. For tests. */
  migrations?: readonly Migration[];
}

type Row = Record<string, SQLInputValue>;

/** SQLITE_CONSTRAINT_UNIQUE and SQLITE_CONSTRAINT_PRIMARYKEY. */
const UNIQUE_ERRCODES = new Set([2067, 1555]);
/** SQLITE_CONSTRAINT_FOREIGNKEY. */
const FOREIGN_KEY_ERRCODE = 787;

/** Runs synchronous work as a promise, so that a throw becomes a rejection. */
function run<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e);
  }
}

function errcode(e: unknown): number | undefined {
  const code = (e as { errcode?: unknown } | null)?.errcode;
  return typeof code === "number" ? code : undefined;
}

const USER_COLUMNS = "id, name, email, phone_number, password, created_at, quota_bytes";
const FILE_COLUMNS = "user_id, path, size, sha256, modified";

function userFromRow(row: Row): User {
  return {
    id: toNumber(row.id),
    name: String(row.name),
    email: String(row.email),
    phone: String(row.phone_number),
    passwordHash: String(row.password),
    createdAt: toDate(row.created_at),
    quotaBytes: toNumberOrNull(row.quota_bytes),
  };
}

function fileFromRow(row: Row): FileRecord {
  return {
    userId: toNumber(row.user_id),
    path: String(row.path),
    size: toNumber(row.size),
    sha256: String(row.sha256),
    modified: toDate(row.modified),
  };
}

function auditFromRow(row: Row): AuditEvent {
  return {
    event: String(row.event),
    email: toStringOrNull(row.email),
    source: toStringOrNull(row.source),
    userId: toNumberOrNull(row.user_id),
    detail: toStringOrNull(row.detail),
    at: toDate(row.at),
  };
}

/**
 * Opens (creating when missing) the SQLite database at `path` and sets its pragmas. Does
 * not migrate: call {@link SqliteStore.migrate} (server/db/open.ts does).
 *
 * @example
 * ```ts
 * const store = openSqliteStore("./cloud-data/cloud.db");
 * await store.migrate();
 * ```
 */
export function openSqliteStore(path: string, options: SqliteStoreOptions = {}): SqliteStore {
  return new SqliteStore(new DatabaseSync(path), options);
}

/** The SQLite implementation of {@link Store}; make one with {@link openSqliteStore}. */
export class SqliteStore implements Store {
  /** Always "sqlite". */
  readonly dialect = "sqlite" as const;
  readonly #db: DatabaseSync;
  readonly #migrations: readonly Migration[];
  readonly #statements = new Map<string, StatementSync>();

  /** Wraps an open database and sets its pragmas. Prefer {@link openSqliteStore}. */
  constructor(db: DatabaseSync, options: SqliteStoreOptions = {}) {
    this.#db = db;
    this.#migrations = options.migrations ?? MIGRATIONS.sqlite;
    const timeout = checkInteger(options.busyTimeoutMs ?? 5000, "busy timeout");
    // The busy timeout first: switching to WAL needs a lock another process may hold.
    db.exec(`PRAGMA busy_timeout = ${timeout}`);
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = NORMAL");
    db.exec("PRAGMA foreign_keys = ON");
  }

  #stmt(sql: string): StatementSync {
    let stmt = this.#statements.get(sql);
    if (stmt === undefined) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  #get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.#stmt(sql).get(...params) as Row | undefined;
  }

  #all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.#stmt(sql).all(...params) as Row[];
  }

  #run(sql: string, ...params: SQLInputValue[]): { changes: number; lastInsertRowid: number } {
    const r = this.#stmt(sql).run(...params);
    return { changes: toNumber(r.changes), lastInsertRowid: toNumber(r.lastInsertRowid) };
  }

  /** Runs `fn` in a write transaction (BEGIN IMMEDIATE); rolls back if it throws. */
  #transaction<T>(fn: () => T): T {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const result = fn();
      this.#db.exec("COMMIT");
      return result;
    } catch (e) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw e;
    }
  }

  /** Applies pending migrations, each in its own transaction, and returns their names. */
  migrate(): Promise<string[]> {
    return run(() => {
      const applied: string[] = [];
      this.#db.exec(
        "CREATE TABLE IF NOT EXISTS schema_migrations (" +
          "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
      );
      for (;;) {
        // Re-read inside the lock: another process may have migrated meanwhile.
        const done = this.#transaction(() => {
          const versions = new Set(
            this.#db.prepare("SELECT version FROM schema_migrations").all()
              .map((r) => toNumber(r.version)),
          );
          const next = pendingMigrations(this.#migrations, versions)[0];
          if (next === undefined) return true;
          this.#db.exec(next.sql);
          this.#db.prepare(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
          ).run(next.version, next.name, Date.now());
          applied.push(next.name);
          return false;
        });
        if (done) break;
      }
      // A migration may have changed tables that cached statements refer to.
      this.#statements.clear();
      return applied;
    });
  }

  /** Creates a user; throws CloudError E_EXISTS when the email is taken. */
  createUser(user: NewUser): Promise<number> {
    return run(() => {
      try {
        const r = this.#run(
          "INSERT INTO user_data (name, email, phone_number, password, created_at) " +
            "VALUES (?, ?, ?, ?, ?)",
          user.name,
          user.email,
          user.phone,
          user.passwordHash,
          Date.now(),
        );
        return r.lastInsertRowid;
      } catch (e) {
        if (UNIQUE_ERRCODES.has(errcode(e) ?? 0)) {
          throw new CloudError("E_EXISTS", `An account with email "${user.email}" already exists`);
        }
        throw e;
      }
    });
  }

  findUserByEmail(email: string): Promise<User | null> {
    return run(() => {
      const row = this.#get(`SELECT ${USER_COLUMNS} FROM user_data WHERE email = ?`, email);
      return row ? userFromRow(row) : null;
    });
  }

  findUserById(id: number): Promise<User | null> {
    return run(() => {
      const row = this.#get(`SELECT ${USER_COLUMNS} FROM user_data WHERE id = ?`, id);
      return row ? userFromRow(row) : null;
    });
  }

  listUsers(): Promise<User[]> {
    return run(() =>
      this.#all(`SELECT ${USER_COLUMNS} FROM user_data ORDER BY id`).map(userFromRow)
    );
  }

  setPasswordHash(userId: number, hash: string): Promise<void> {
    return run(() => {
      this.#run("UPDATE user_data SET password = ? WHERE id = ?", hash, userId);
    });
  }

  setQuota(userId: number, bytes: number | null): Promise<void> {
    return run(() => {
      if (bytes !== null) checkInteger(bytes, "quota");
      this.#run("UPDATE user_data SET quota_bytes = ? WHERE id = ?", bytes, userId);
    });
  }

  /** Deletes the user, their file records and known sources (audit rows are kept). */
  deleteUser(userId: number): Promise<void> {
    return run(() => {
      this.#transaction(() => {
        this.#run("DELETE FROM files WHERE user_id = ?", userId);
        this.#run("DELETE FROM known_sources WHERE user_id = ?", userId);
        this.#run("DELETE FROM user_data WHERE id = ?", userId);
      });
    });
  }

  getEmailLock(email: string): Promise<EmailLockState> {
    return run(() => {
      const row = this.#get(
        "SELECT failures, locked_until, lock_count FROM email_locks WHERE email = ?",
        email,
      );
      return {
        failures: row ? toNumber(row.failures) : 0,
        lockedUntil: row ? toDateOrNull(row.locked_until) : null,
        lockCount: row ? toNumber(row.lock_count) : 0,
      };
    });
  }

  /** Atomically adds one failure (a single upsert) and returns the new count. */
  addEmailFailure(email: string): Promise<number> {
    return run(() => {
      const row = this.#get(
        "INSERT INTO email_locks (email, failures, lock_count) VALUES (?, 1, 0) " +
          "ON CONFLICT (email) DO UPDATE SET failures = failures + 1 RETURNING failures",
        email,
      );
      return toNumber(row?.failures);
    });
  }

  lockEmail(email: string, until: Date): Promise<void> {
    return run(() => {
      this.#run(
        "INSERT INTO email_locks (email, failures, locked_until, lock_count) VALUES (?, 0, ?, 1) " +
          "ON CONFLICT (email) DO UPDATE SET failures = 0, locked_until = excluded.locked_until, " +
          "lock_count = lock_count + 1",
        email,
        toMillis(until),
      );
    });
  }

  resetEmailLock(email: string, full = false): Promise<void> {
    return run(() => {
      if (full) {
        this.#run("DELETE FROM email_locks WHERE email = ?", email);
      } else {
        this.#run(
          "UPDATE email_locks SET failures = 0, locked_until = NULL WHERE email = ?",
          email,
        );
      }
    });
  }

  addSourceFailure(source: string, at: Date): Promise<void> {
    return run(() => {
      this.#run("INSERT INTO source_failures (source, at) VALUES (?, ?)", source, toMillis(at));
    });
  }

  countSourceFailures(source: string, since: Date): Promise<number> {
    return run(() => {
      const row = this.#get(
        "SELECT COUNT(*) AS n FROM source_failures WHERE source = ? AND at >= ?",
        source,
        toMillis(since),
      );
      return toNumber(row?.n);
    });
  }

  getSourceBlock(source: string): Promise<Date | null> {
    return run(() => {
      const row = this.#get("SELECT blocked_until FROM source_blocks WHERE source = ?", source);
      return row ? toDate(row.blocked_until) : null;
    });
  }

  setSourceBlock(source: string, until: Date): Promise<void> {
    return run(() => {
      this.#run(
        "INSERT INTO source_blocks (source, blocked_until) VALUES (?, ?) " +
          "ON CONFLICT (source) DO UPDATE SET blocked_until = excluded.blocked_until",
        source,
        toMillis(until),
      );
    });
  }

  clearSource(source: string): Promise<boolean> {
    return run(() => {
      const changes = this.#transaction(() =>
        this.#run("DELETE FROM source_blocks WHERE source = ?", source).changes +
        this.#run("DELETE FROM source_failures WHERE source = ?", source).changes
      );
      return changes > 0;
    });
  }

  recordKnownSource(userId: number, source: string, at: Date): Promise<void> {
    return run(() => {
      try {
        this.#run(
          "INSERT INTO known_sources (user_id, source, last_success) VALUES (?, ?, ?) " +
            "ON CONFLICT (user_id, source) DO UPDATE SET " +
            "last_success = MAX(last_success, excluded.last_success)",
          userId,
          source,
          toMillis(at),
        );
      } catch (e) {
        throw this.#foreignKey(e, userId);
      }
    });
  }

  isKnownSource(userId: number, source: string, since: Date): Promise<boolean> {
    return run(() => {
      const row = this.#get(
        "SELECT 1 AS ok FROM known_sources WHERE user_id = ? AND source = ? AND last_success >= ?",
        userId,
        source,
        toMillis(since),
      );
      return row !== undefined;
    });
  }

  audit(event: AuditEvent): Promise<void> {
    return run(() => {
      this.#run(
        "INSERT INTO audit_log (at, event, email, source, user_id, detail) " +
          "VALUES (?, ?, ?, ?, ?, ?)",
        toMillis(event.at),
        event.event,
        event.email,
        event.source,
        event.userId,
        event.detail,
      );
    });
  }

  /** Newest first (by time, then by insertion order). */
  listAudit(limit: number): Promise<AuditEvent[]> {
    return run(() => {
      checkInteger(limit, "limit");
      return this.#all(
        "SELECT at, event, email, source, user_id, detail FROM audit_log " +
          "ORDER BY at DESC, id DESC LIMIT ?",
        Math.max(0, limit),
      ).map(auditFromRow);
    });
  }

  /** Inserts or replaces a file record; CloudError E_NOT_FOUND when the user is unknown. */
  putFile(file: FileRecord): Promise<void> {
    return run(() => {
      checkInteger(file.size, "size");
      try {
        this.#run(
          `INSERT INTO files (${FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?) ` +
            "ON CONFLICT (user_id, path) DO UPDATE SET size = excluded.size, " +
            "sha256 = excluded.sha256, modified = excluded.modified",
          file.userId,
          file.path,
          file.size,
          file.sha256,
          toMillis(file.modified),
        );
      } catch (e) {
        throw this.#foreignKey(e, file.userId);
      }
    });
  }

  getFile(userId: number, path: string): Promise<FileRecord | null> {
    return run(() => {
      const row = this.#get(
        `SELECT ${FILE_COLUMNS} FROM files WHERE user_id = ? AND path = ?`,
        userId,
        path,
      );
      return row ? fileFromRow(row) : null;
    });
  }

  /** Records at `prefix` or under `prefix/` ("" means all), ordered by path bytes. */
  listFiles(userId: number, prefix: string): Promise<FileRecord[]> {
    return run(() => {
      let rows: Row[];
      if (prefix === "") {
        rows = this.#all(
          `SELECT ${FILE_COLUMNS} FROM files WHERE user_id = ? ORDER BY path`,
          userId,
        );
      } else {
        const { low, high } = subtreeRange(prefix);
        rows = this.#all(
          `SELECT ${FILE_COLUMNS} FROM files ` +
            "WHERE user_id = ? AND (path = ? OR (path >= ? AND path < ?)) ORDER BY path",
          userId,
          prefix,
          low,
          high,
        );
      }
      return rows.map(fileFromRow);
    });
  }

  allFiles(): Promise<FileRecord[]> {
    return run(() => {
      const rows = this.#all(`SELECT ${FILE_COLUMNS} FROM files ORDER BY user_id, path`);
      return rows.map(fileFromRow);
    });
  }

  deleteFile(userId: number, path: string): Promise<boolean> {
    return run(() => {
      const r = this.#run("DELETE FROM files WHERE user_id = ? AND path = ?", userId, path);
      return r.changes > 0;
    });
  }

  /** Deletes records at `prefix` and under `prefix/` ("" means all); returns how many. */
  deleteTree(userId: number, prefix: string): Promise<number> {
    return run(() => {
      if (prefix === "") {
        return this.#run("DELETE FROM files WHERE user_id = ?", userId).changes;
      }
      const { low, high } = subtreeRange(prefix);
      const r = this.#run(
        "DELETE FROM files WHERE user_id = ? AND (path = ? OR (path >= ? AND path < ?))",
        userId,
        prefix,
        low,
        high,
      );
      return r.changes;
    });
  }

  /**
   * Moves the record at `from` and every record under `from/` to `to` in one transaction.
   * CloudError E_EXISTS (and nothing changed) when a target path already has a record;
   * E_CONFLICT when `to` is inside `from`. Nothing to move is not an error.
   */
  renamePath(userId: number, from: string, to: string): Promise<void> {
    return run(() => {
      if (from === to) return;
      if (to.startsWith(`${from}/`) || from === "" || to === "") {
        throw new CloudError("E_CONFLICT", `Cannot move "${from}" to "${to}"`);
      }
      const { low, high } = subtreeRange(from);
      this.#transaction(() => {
        const where = "WHERE user_id = ? AND (path = ? OR (path >= ? AND path < ?))";
        const files = this.#all(
          `SELECT ${FILE_COLUMNS} FROM files ${where}`,
          userId,
          from,
          low,
          high,
        )
          .map(fileFromRow);
        // Delete then insert, so that moving a/b to a cannot collide with itself midway.
        this.#run(`DELETE FROM files ${where}`, userId, from, low, high);
        for (const file of files) {
          const path = renamedPath(file.path, from, to);
          try {
            this.#run(
              `INSERT INTO files (${FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?)`,
              userId,
              path,
              file.size,
              file.sha256,
              file.modified.getTime(),
            );
          } catch (e) {
            if (UNIQUE_ERRCODES.has(errcode(e) ?? 0)) {
              throw new CloudError("E_EXISTS", `A record for "${path}" already exists`);
            }
            throw e;
          }
        }
      });
    });
  }

  usage(userId: number): Promise<{ bytes: number; files: number }> {
    return run(() => {
      const row = this.#get(
        "SELECT COALESCE(SUM(size), 0) AS bytes, COUNT(*) AS files FROM files WHERE user_id = ?",
        userId,
      );
      return { bytes: toNumber(row?.bytes), files: toNumber(row?.files) };
    });
  }

  /** Closes the database; the store is unusable afterwards. */
  close(): Promise<void> {
    return run(() => {
      this.#statements.clear();
      if (this.#db.isOpen) this.#db.close();
    });
  }

  #foreignKey(e: unknown, userId: number): unknown {
    return errcode(e) === FOREIGN_KEY_ERRCODE
      ? new CloudError("E_NOT_FOUND", `No user with id "${userId}"`)
      : e;
  }
}

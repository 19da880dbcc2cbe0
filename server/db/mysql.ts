/**
 * The {@link Store} on MySQL 8 or MariaDB 10.6+ through a `mysql2/promise` pool.
 *
 * Every statement is parameterised (server-side prepared statements via `execute`).
 * Upserts repeat their values as parameters rather than use `VALUES(col)`, which MySQL
 * 8.0.20+ deprecates and MariaDB lacks the replacement (`AS new`) for.
 * BIGINT and DECIMAL values arrive as strings (`supportBigNumbers` + `bigNumberStrings`)
 * and are converted to numbers; times are stored as BIGINT epoch milliseconds, so no time
 * zone conversion happens anywhere. File paths are VARBINARY, keyed by their SHA-256.
 * Several server processes may share one database: all state lives in it, and the few
 * multi-statement operations run in transactions (retried on deadlock).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import {
  createPool,
  type Pool,
  type PoolConnection,
  type ResultSetHeader,
  type RowDataPacket,
} from "mysql2/promise";
import { CloudError } from "../../protocol/errors.ts";
import { type Migration, MIGRATIONS } from "../../sql/mod.ts";
import type { AuditEvent, EmailLockState, FileRecord, NewUser, Store, User } from "../store.ts";
import {
  checkInteger,
  pendingMigrations,
  renamedPath,
  splitStatements,
  subtreeRange,
  toDate,
  toDateOrNull,
  toMillis,
  toNumber,
  toNumberOrNull,
  toStringOrNull,
} from "./_internal.ts";

/** Connection settings of {@link createMysqlStore}. */
export interface MysqlStoreOptions {
  host: string;
  /** Default 3306. */
  port?: number;
  user: string;
  password?: string;
  database: string;
  /** Pool size. Default 10. */
  connectionLimit?: number;
  /** How long `migrate()` waits for another process's migration lock, in seconds. Default 60. */
  migrationLockTimeoutSec?: number;
  /** Migrations to apply; default the built-in list. For tests. */
  migrations?: readonly Migration[];
}

type Param = string | number | null | Buffer;
type Row = RowDataPacket;
type Runner = Pick<Pool | PoolConnection, "execute">;

const ER_DUP_ENTRY = "ER_DUP_ENTRY";
const ER_NO_REFERENCED_ROW = "ER_NO_REFERENCED_ROW_2";
const ER_LOCK_DEADLOCK = "ER_LOCK_DEADLOCK";
const TRANSACTION_ATTEMPTS = 3;

function mysqlCode(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

const USER_COLUMNS = "id, name, email, phone_number, password, created_at, quota_bytes";
const FILE_COLUMNS = "user_id, path, size, sha256, modified";
/** Matches a record at `path` or under `path/` (params: user, hash of path, low, high). */
const SUBTREE_WHERE = "WHERE user_id = ? AND (path_hash = ? OR (path >= ? AND path < ?))";

/** The UTF-8 bytes of a path, as stored in `files.path`. */
function pathBytes(path: string): Buffer {
  return Buffer.from(path, "utf8");
}

/** The SHA-256 of a path's UTF-8 bytes: `files.path_hash`, half of the primary key. */
function pathHash(path: string): Buffer {
  return createHash("sha256").update(path, "utf8").digest();
}

function subtreeParams(userId: number, prefix: string): Param[] {
  const { low, high } = subtreeRange(prefix);
  return [userId, pathHash(prefix), pathBytes(low), pathBytes(high)];
}

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
  const path = row.path;
  return {
    userId: toNumber(row.user_id),
    path: Buffer.isBuffer(path) ? path.toString("utf8") : String(path),
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
 * Creates a pool for the database (connecting lazily). Does not migrate: call
 * {@link MysqlStore.migrate} (server/db/open.ts does).
 *
 * @example
 * ```ts
 * const store = createMysqlStore({ host: "127.0.0.1", user: "root", database: "security" });
 * await store.migrate();
 * ```
 */
export function createMysqlStore(options: MysqlStoreOptions): MysqlStore {
  return new MysqlStore(options);
}

/** The MySQL/MariaDB implementation of {@link Store}; make one with {@link createMysqlStore}. */
export class MysqlStore implements Store {
  /** Always "mysql". */
  readonly dialect = "mysql" as const;
  readonly #pool: Pool;
  readonly #migrations: readonly Migration[];
  readonly #lockTimeoutSec: number;

  /** Prefer {@link createMysqlStore}. */
  constructor(options: MysqlStoreOptions) {
    this.#migrations = options.migrations ?? MIGRATIONS.mysql;
    this.#lockTimeoutSec = checkInteger(options.migrationLockTimeoutSec ?? 60, "lock timeout");
    this.#pool = createPool({
      host: options.host,
      port: options.port ?? 3306,
      user: options.user,
      password: options.password ?? "",
      database: options.database,
      connectionLimit: options.connectionLimit ?? 10,
      supportBigNumbers: true,
      bigNumberStrings: true,
      timezone: "Z",
      charset: "utf8mb4",
    });
  }

  async #rows(sql: string, params: Param[], on: Runner = this.#pool): Promise<Row[]> {
    const [rows] = await on.execute<Row[]>(sql, params);
    return rows;
  }

  async #row(sql: string, params: Param[], on: Runner = this.#pool): Promise<Row | undefined> {
    return (await this.#rows(sql, params, on))[0];
  }

  async #exec(sql: string, params: Param[], on: Runner = this.#pool): Promise<ResultSetHeader> {
    const [result] = await on.execute<ResultSetHeader>(sql, params);
    return result;
  }

  /** Runs `fn` in a transaction on one connection; retried on deadlock, rolled back on error. */
  async #transaction<T>(fn: (conn: PoolConnection) => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      const conn = await this.#pool.getConnection();
      let usable = true;
      try {
        await conn.beginTransaction();
        const result = await fn(conn);
        await conn.commit();
        return result;
      } catch (e) {
        // A connection whose rollback failed is in an unknown state: never pool it again.
        await conn.rollback().catch(() => usable = false);
        if (mysqlCode(e) !== ER_LOCK_DEADLOCK || attempt >= TRANSACTION_ATTEMPTS) throw e;
      } finally {
        if (usable) conn.release();
        else conn.destroy();
      }
    }
  }

  /**
   * Applies pending migrations and returns their names. A named lock (GET_LOCK) per
   * database serialises processes that start at once. MySQL commits DDL implicitly, so a
   * migration is not atomic: each is recorded right after its last statement succeeds.
   */
  async migrate(): Promise<string[]> {
    const conn = await this.#pool.getConnection();
    const lockName = "LEFT(CONCAT('cloud.migrate.', DATABASE()), 64)";
    let usable = true;
    try {
      const [locked] = await conn.query<Row[]>(`SELECT GET_LOCK(${lockName}, ?) AS ok`, [
        this.#lockTimeoutSec,
      ]);
      if (toNumberOrNull(locked[0]?.ok) !== 1) {
        throw new Error(
          `Timed out after "${this.#lockTimeoutSec}" s waiting for another migration`,
        );
      }
      try {
        await conn.query(
          "CREATE TABLE IF NOT EXISTS schema_migrations (" +
            "version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, " +
            "applied_at BIGINT NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
        );
        const [rows] = await conn.query<Row[]>("SELECT version FROM schema_migrations");
        const versions = new Set(rows.map((r) => toNumber(r.version)));
        const applied: string[] = [];
        for (const m of pendingMigrations(this.#migrations, versions)) {
          for (const statement of splitStatements(m.sql)) await conn.query(statement);
          await conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            [m.version, m.name, Date.now()],
          );
          applied.push(m.name);
        }
        return applied;
      } finally {
        // The lock belongs to the session: if it cannot be released, close the session.
        await conn.query(`SELECT RELEASE_LOCK(${lockName})`).catch(() => usable = false);
      }
    } finally {
      if (usable) conn.release();
      else conn.destroy();
    }
  }

  /** Creates a user; throws CloudError E_EXISTS when the email is taken. */
  async createUser(user: NewUser): Promise<number> {
    try {
      const r = await this.#exec(
        "INSERT INTO user_data (name, email, phone_number, password, created_at) " +
          "VALUES (?, ?, ?, ?, ?)",
        [user.name, user.email, user.phone, user.passwordHash, Date.now()],
      );
      return toNumber(r.insertId);
    } catch (e) {
      if (mysqlCode(e) === ER_DUP_ENTRY) {
        throw new CloudError("E_EXISTS", `An account with email "${user.email}" already exists`);
      }
      throw e;
    }
  }

  async findUserByEmail(email: string): Promise<User | null> {
    const row = await this.#row(`SELECT ${USER_COLUMNS} FROM user_data WHERE email = ?`, [
      email,
    ]);
    return row ? userFromRow(row) : null;
  }

  async findUserById(id: number): Promise<User | null> {
    const row = await this.#row(`SELECT ${USER_COLUMNS} FROM user_data WHERE id = ?`, [id]);
    return row ? userFromRow(row) : null;
  }

  async listUsers(): Promise<User[]> {
    const rows = await this.#rows(`SELECT ${USER_COLUMNS} FROM user_data ORDER BY id`, []);
    return rows.map(userFromRow);
  }

  async setPasswordHash(userId: number, hash: string): Promise<void> {
    await this.#exec("UPDATE user_data SET password = ? WHERE id = ?", [hash, userId]);
  }

  async setQuota(userId: number, bytes: number | null): Promise<void> {
    if (bytes !== null) checkInteger(bytes, "quota");
    await this.#exec("UPDATE user_data SET quota_bytes = ? WHERE id = ?", [bytes, userId]);
  }

  /** Deletes the user, their file records and known sources (audit rows are kept). */
  async deleteUser(userId: number): Promise<void> {
    await this.#transaction(async (conn) => {
      await this.#exec("DELETE FROM files WHERE user_id = ?", [userId], conn);
      await this.#exec("DELETE FROM known_sources WHERE user_id = ?", [userId], conn);
      await this.#exec("DELETE FROM user_data WHERE id = ?", [userId], conn);
    });
  }

  async getEmailLock(email: string): Promise<EmailLockState> {
    const row = await this.#row(
      "SELECT failures, locked_until, lock_count FROM email_locks WHERE email = ?",
      [email],
    );
    return {
      failures: row ? toNumber(row.failures) : 0,
      lockedUntil: row ? toDateOrNull(row.locked_until) : null,
      lockCount: row ? toNumber(row.lock_count) : 0,
    };
  }

  /**
   * Atomically adds one failure and returns the new count: the upsert takes the row's
   * exclusive lock, and the count is read back before the transaction releases it.
   */
  addEmailFailure(email: string): Promise<number> {
    return this.#transaction(async (conn) => {
      await this.#exec(
        "INSERT INTO email_locks (email, failures, lock_count) VALUES (?, 1, 0) " +
          "ON DUPLICATE KEY UPDATE failures = failures + 1",
        [email],
        conn,
      );
      const row = await this.#row(
        "SELECT failures FROM email_locks WHERE email = ? FOR UPDATE",
        [email],
        conn,
      );
      return toNumber(row?.failures);
    });
  }

  async lockEmail(email: string, until: Date): Promise<void> {
    await this.#exec(
      "INSERT INTO email_locks (email, failures, locked_until, lock_count) VALUES (?, 0, ?, 1) " +
        "ON DUPLICATE KEY UPDATE failures = 0, locked_until = ?, lock_count = lock_count + 1",
      [email, toMillis(until), toMillis(until)],
    );
  }

  async resetEmailLock(email: string, full = false): Promise<void> {
    if (full) {
      await this.#exec("DELETE FROM email_locks WHERE email = ?", [email]);
    } else {
      await this.#exec(
        "UPDATE email_locks SET failures = 0, locked_until = NULL WHERE email = ?",
        [email],
      );
    }
  }

  async addSourceFailure(source: string, at: Date): Promise<void> {
    await this.#exec("INSERT INTO source_failures (source, at) VALUES (?, ?)", [
      source,
      toMillis(at),
    ]);
  }

  async countSourceFailures(source: string, since: Date): Promise<number> {
    const row = await this.#row(
      "SELECT COUNT(*) AS n FROM source_failures WHERE source = ? AND at >= ?",
      [source, toMillis(since)],
    );
    return toNumber(row?.n);
  }

  async getSourceBlock(source: string): Promise<Date | null> {
    const row = await this.#row("SELECT blocked_until FROM source_blocks WHERE source = ?", [
      source,
    ]);
    return row ? toDate(row.blocked_until) : null;
  }

  async setSourceBlock(source: string, until: Date): Promise<void> {
    await this.#exec(
      "INSERT INTO source_blocks (source, blocked_until) VALUES (?, ?) " +
        "ON DUPLICATE KEY UPDATE blocked_until = ?",
      [source, toMillis(until), toMillis(until)],
    );
  }

  clearSource(source: string): Promise<boolean> {
    return this.#transaction(async (conn) => {
      const blocks = await this.#exec("DELETE FROM source_blocks WHERE source = ?", [source], conn);
      const failures = await this.#exec(
        "DELETE FROM source_failures WHERE source = ?",
        [source],
        conn,
      );
      return blocks.affectedRows + failures.affectedRows > 0;
    });
  }

  async recordKnownSource(userId: number, source: string, at: Date): Promise<void> {
    try {
      await this.#exec(
        "INSERT INTO known_sources (user_id, source, last_success) VALUES (?, ?, ?) " +
          "ON DUPLICATE KEY UPDATE last_success = GREATEST(last_success, ?)",
        [userId, source, toMillis(at), toMillis(at)],
      );
    } catch (e) {
      throw foreignKey(e, userId);
    }
  }

  async isKnownSource(userId: number, source: string, since: Date): Promise<boolean> {
    const row = await this.#row(
      "SELECT 1 AS ok FROM known_sources WHERE user_id = ? AND source = ? AND last_success >= ?",
      [userId, source, toMillis(since)],
    );
    return row !== undefined;
  }

  async audit(event: AuditEvent): Promise<void> {
    await this.#exec(
      "INSERT INTO audit_log (at, event, email, source, user_id, detail) " +
        "VALUES (?, ?, ?, ?, ?, ?)",
      [toMillis(event.at), event.event, event.email, event.source, event.userId, event.detail],
    );
  }

  /** Newest first (by time, then by insertion order). */
  async listAudit(limit: number): Promise<AuditEvent[]> {
    checkInteger(limit, "limit");
    // A string: MySQL 8.0.22+ refuses a DOUBLE (how mysql2 sends numbers) for LIMIT.
    const rows = await this.#rows(
      "SELECT at, event, email, source, user_id, detail FROM audit_log " +
        "ORDER BY at DESC, id DESC LIMIT ?",
      [String(Math.max(0, limit))],
    );
    return rows.map(auditFromRow);
  }

  /** Inserts or replaces a file record; CloudError E_NOT_FOUND when the user is unknown. */
  async putFile(file: FileRecord): Promise<void> {
    checkInteger(file.size, "size");
    try {
      await this.#exec(
        `INSERT INTO files (path_hash, ${FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ` +
          "ON DUPLICATE KEY UPDATE size = ?, sha256 = ?, modified = ?",
        [
          pathHash(file.path),
          file.userId,
          pathBytes(file.path),
          file.size,
          file.sha256,
          toMillis(file.modified),
          file.size,
          file.sha256,
          toMillis(file.modified),
        ],
      );
    } catch (e) {
      throw foreignKey(e, file.userId);
    }
  }

  async getFile(userId: number, path: string): Promise<FileRecord | null> {
    const row = await this.#row(
      `SELECT ${FILE_COLUMNS} FROM files WHERE user_id = ? AND path_hash = ?`,
      [userId, pathHash(path)],
    );
    return row ? fileFromRow(row) : null;
  }

  /** Records at `prefix` or under `prefix/` ("" means all), ordered by path bytes. */
  async listFiles(userId: number, prefix: string): Promise<FileRecord[]> {
    const rows = prefix === ""
      ? await this.#rows(`SELECT ${FILE_COLUMNS} FROM files WHERE user_id = ? ORDER BY path`, [
        userId,
      ])
      : await this.#rows(
        `SELECT ${FILE_COLUMNS} FROM files ${SUBTREE_WHERE} ORDER BY path`,
        subtreeParams(userId, prefix),
      );
    return rows.map(fileFromRow);
  }

  async allFiles(): Promise<FileRecord[]> {
    const rows = await this.#rows(`SELECT ${FILE_COLUMNS} FROM files ORDER BY user_id, path`, []);
    return rows.map(fileFromRow);
  }

  async deleteFile(userId: number, path: string): Promise<boolean> {
    const r = await this.#exec("DELETE FROM files WHERE user_id = ? AND path_hash = ?", [
      userId,
      pathHash(path),
    ]);
    return r.affectedRows > 0;
  }

  /** Deletes records at `prefix` and under `prefix/` ("" means all); returns how many. */
  async deleteTree(userId: number, prefix: string): Promise<number> {
    const r = prefix === ""
      ? await this.#exec("DELETE FROM files WHERE user_id = ?", [userId])
      : await this.#exec(`DELETE FROM files ${SUBTREE_WHERE}`, subtreeParams(userId, prefix));
    return r.affectedRows;
  }

  /**
   * Moves the record at `from` and every record under `from/` to `to` in one transaction.
   * CloudError E_EXISTS (and nothing changed) when a target path already has a record;
   * E_CONFLICT when `to` is inside `from`. Nothing to move is not an error.
   */
  async renamePath(userId: number, from: string, to: string): Promise<void> {
    if (from === to) return;
    if (to.startsWith(`${from}/`) || from === "" || to === "") {
      throw new CloudError("E_CONFLICT", `Cannot move "${from}" to "${to}"`);
    }
    await this.#transaction(async (conn) => {
      const params = subtreeParams(userId, from);
      const files = (await this.#rows(
        `SELECT ${FILE_COLUMNS} FROM files ${SUBTREE_WHERE} FOR UPDATE`,
        params,
        conn,
      )).map(fileFromRow);
      // Delete then insert, so that moving a/b to a cannot collide with itself midway.
      await this.#exec(`DELETE FROM files ${SUBTREE_WHERE}`, params, conn);
      for (const file of files) {
        const path = renamedPath(file.path, from, to);
        try {
          await this.#exec(
            `INSERT INTO files (path_hash, ${FILE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`,
            [
              pathHash(path),
              userId,
              pathBytes(path),
              file.size,
              file.sha256,
              toMillis(file.modified),
            ],
            conn,
          );
        } catch (e) {
          if (mysqlCode(e) === ER_DUP_ENTRY) {
            throw new CloudError("E_EXISTS", `A record for "${path}" already exists`);
          }
          throw e;
        }
      }
    });
  }

  async usage(userId: number): Promise<{ bytes: number; files: number }> {
    const row = await this.#row(
      "SELECT COALESCE(SUM(size), 0) AS bytes, COUNT(*) AS files FROM files WHERE user_id = ?",
      [userId],
    );
    return { bytes: toNumber(row?.bytes), files: toNumber(row?.files) };
  }

  /** Closes every pooled connection; the store is unusable afterwards. */
  async close(): Promise<void> {
    await this.#pool.end();
  }
}

function foreignKey(e: unknown, userId: number): unknown {
  return mysqlCode(e) === ER_NO_REFERENCED_ROW
    ? new CloudError("E_NOT_FOUND", `No user with id "${userId}"`)
    : e;
}

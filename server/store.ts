/**
 * The database seen by the rest of the server: one interface, implemented for SQLite
 * (server/db/sqlite.ts) and MySQL/MariaDB (server/db/mysql.ts), sharing SQL where the
 * dialects agree. All lockout and lock state lives here, never only in memory, so several
 * server processes can share one MySQL database.
 *
 * @module
 */

/** A row of `user_data`. */
export interface User {
  id: number;
  name: string;
  /** Normalised (trimmed, lower-cased). */
  email: string;
  phone: string;
  /** bcrypt hash. */
  passwordHash: string;
  createdAt: Date;
  /** Per-user quota in bytes; null means the server default applies. */
  quotaBytes: number | null;
}

/** Input of {@link Store.createUser}. */
export interface NewUser {
  name: string;
  email: string;
  phone: string;
  passwordHash: string;
}

/** Failed-login state of one email string (whether or not an account has it). */
export interface EmailLockState {
  /** Consecutive failures since the last success or lock. */
  failures: number;
  /** Locked until this time, or null. */
  lockedUntil: Date | null;
  /** How many times this email has been locked (drives the doubling). */
  lockCount: number;
}

/** One audit log event. */
export interface AuditEvent {
  /** e.g. login_ok, login_fail, login_locked, lock, unlock, unblock, register, passwd. */
  event: string;
  email: string | null;
  source: string | null;
  userId: number | null;
  detail: string | null;
  at: Date;
}

/** A file's record. */
export interface FileRecord {
  userId: number;
  /** Normalised path inside the user's root, "/"-separated, no leading slash. */
  path: string;
  size: number;
  /** Lower-case hex. */
  sha256: string;
  /** Modification time. */
  modified: Date;
}

/** Database operations of the server and `cloud admin`. */
export interface Store {
  readonly dialect: "sqlite" | "mysql";

  /** Applies pending migrations from sql/<dialect>/ and returns the names applied. */
  migrate(): Promise<string[]>;

  /** Creates a user; throws CloudError E_EXISTS when the email is taken. Returns the id. */
  createUser(user: NewUser): Promise<number>;
  findUserByEmail(email: string): Promise<User | null>;
  findUserById(id: number): Promise<User | null>;
  listUsers(): Promise<User[]>;
  setPasswordHash(userId: number, hash: string): Promise<void>;
  setQuota(userId: number, bytes: number | null): Promise<void>;
  /** Deletes the user and every row that belongs to them (files, login history). */
  deleteUser(userId: number): Promise<void>;

  /** Current lock state of an email string; zeros when never seen. */
  getEmailLock(email: string): Promise<EmailLockState>;
  /** Atomically adds one failure and returns the new count. */
  addEmailFailure(email: string): Promise<number>;
  /** Sets a lock: failures back to 0, lockedUntil set, lockCount incremented. */
  lockEmail(email: string, until: Date): Promise<void>;
  /** After a success: failures and lock cleared (lockCount kept unless `full`). */
  resetEmailLock(email: string, full?: boolean): Promise<void>;

  /** Records a failed login from a source (an IPv4 /32 or IPv6 /56 key). */
  addSourceFailure(source: string, at: Date): Promise<void>;
  /** Failures from a source since `since`. */
  countSourceFailures(source: string, since: Date): Promise<number>;
  /** When the source is blocked until, or null. */
  getSourceBlock(source: string): Promise<Date | null>;
  setSourceBlock(source: string, until: Date): Promise<void>;
  /** Clears a block and the source's recorded failures; returns true if anything was cleared. */
  clearSource(source: string): Promise<boolean>;

  /** Remembers that `source` logged in to `userId` successfully at `at`. */
  recordKnownSource(userId: number, source: string, at: Date): Promise<void>;
  /** True when `source` logged in to `userId` successfully since `since`. */
  isKnownSource(userId: number, source: string, since: Date): Promise<boolean>;

  audit(event: AuditEvent): Promise<void>;
  /** Newest first. */
  listAudit(limit: number): Promise<AuditEvent[]>;

  /** Inserts or replaces a file record. */
  putFile(file: FileRecord): Promise<void>;
  getFile(userId: number, path: string): Promise<FileRecord | null>;
  /** Records whose path is `prefix` + "/" + anything (all of the user's when prefix is ""). */
  listFiles(userId: number, prefix: string): Promise<FileRecord[]>;
  /** Every record of every user (fsck). */
  allFiles(): Promise<FileRecord[]>;
  deleteFile(userId: number, path: string): Promise<boolean>;
  /** Deletes records at `prefix` and under `prefix/`; returns how many. */
  deleteTree(userId: number, prefix: string): Promise<number>;
  /** Renames a record, or every record under a folder when `from` is a folder. */
  renamePath(userId: number, from: string, to: string): Promise<void>;
  /** Bytes and file count recorded for the user. */
  usage(userId: number): Promise<{ bytes: number; files: number }>;

  close(): Promise<void>;
}

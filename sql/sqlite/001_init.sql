-- cloud schema version 1, SQLite dialect.
-- All times are Unix epoch milliseconds (INTEGER, UTC). Text compares bytewise (BINARY),
-- so paths and emails are case-sensitive here; callers normalise emails.
-- Statements end with ";" at the end of a line (the MySQL runner splits on that; keep the
-- two dialects' files alike).

-- The seed's table and columns, plus created_at and quota_bytes.
-- AUTOINCREMENT: ids are never reused, because <data>/users/<id>/ is named after them.
CREATE TABLE user_data (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  email TEXT NOT NULL UNIQUE,
  phone_number TEXT NOT NULL,
  password TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  quota_bytes INTEGER
);

-- Failed-login state per email string typed, whether or not an account has it.
CREATE TABLE email_locks (
  email TEXT NOT NULL PRIMARY KEY,
  failures INTEGER NOT NULL DEFAULT 0,
  locked_until INTEGER,
  lock_count INTEGER NOT NULL DEFAULT 0
);

-- One row per failed login from a source address key (IPv4 /32, IPv6 /56).
CREATE TABLE source_failures (
  id INTEGER PRIMARY KEY,
  source TEXT NOT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX source_failures_source_at ON source_failures (source, at);

CREATE TABLE source_blocks (
  source TEXT NOT NULL PRIMARY KEY,
  blocked_until INTEGER NOT NULL
);

-- Sources that logged in to an account successfully (exempt from the account lock).
CREATE TABLE known_sources (
  user_id INTEGER NOT NULL REFERENCES user_data (id) ON DELETE CASCADE,
  source TEXT NOT NULL,
  last_success INTEGER NOT NULL,
  PRIMARY KEY (user_id, source)
);

-- Security events; kept when the user is deleted (user_id is not a foreign key).
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  event TEXT NOT NULL,
  email TEXT,
  source TEXT,
  user_id INTEGER,
  detail TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);

-- One row per stored file; path is relative to the user's root, "/"-separated.
CREATE TABLE files (
  user_id INTEGER NOT NULL REFERENCES user_data (id) ON DELETE CASCADE,
  path TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  modified INTEGER NOT NULL,
  PRIMARY KEY (user_id, path)
);

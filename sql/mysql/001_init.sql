-- cloud schema version 1, MySQL 8 / MariaDB 10.6+ dialect.
-- All times are Unix epoch milliseconds (BIGINT, UTC): no time zone conversions anywhere.
-- Text is utf8mb4_bin (case-sensitive, like SQLite); callers normalise emails.
-- File paths are VARBINARY (bytewise, case-sensitive, no PAD SPACE) and keyed by their
-- SHA-256, since an index cannot hold 4096 bytes.
-- DDL commits implicitly in MySQL, so this file is not atomic: the runner serialises
-- migrations with GET_LOCK and records the version after the last statement.
-- Statements end with ";" at the end of a line (the runner splits on that).

-- The seed's table and columns, plus created_at and quota_bytes.
CREATE TABLE user_data (
  id BIGINT NOT NULL AUTO_INCREMENT,
  name VARCHAR(200) NOT NULL,
  email VARCHAR(320) NOT NULL,
  phone_number VARCHAR(64) NOT NULL,
  password VARCHAR(255) NOT NULL,
  created_at BIGINT NOT NULL,
  quota_bytes BIGINT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY user_data_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Failed-login state per email string typed, whether or not an account has it.
CREATE TABLE email_locks (
  email VARCHAR(512) NOT NULL,
  failures INT NOT NULL DEFAULT 0,
  locked_until BIGINT NULL,
  lock_count INT NOT NULL DEFAULT 0,
  PRIMARY KEY (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per failed login from a source address key (IPv4 /32, IPv6 /56).
CREATE TABLE source_failures (
  id BIGINT NOT NULL AUTO_INCREMENT,
  source VARCHAR(100) NOT NULL,
  at BIGINT NOT NULL,
  PRIMARY KEY (id),
  KEY source_failures_source_at (source, at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE source_blocks (
  source VARCHAR(100) NOT NULL,
  blocked_until BIGINT NOT NULL,
  PRIMARY KEY (source)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Sources that logged in to an account successfully (exempt from the account lock).
CREATE TABLE known_sources (
  user_id BIGINT NOT NULL,
  source VARCHAR(100) NOT NULL,
  last_success BIGINT NOT NULL,
  PRIMARY KEY (user_id, source),
  CONSTRAINT known_sources_user FOREIGN KEY (user_id) REFERENCES user_data (id)
    ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Security events; kept when the user is deleted (user_id is not a foreign key).
CREATE TABLE audit_log (
  id BIGINT NOT NULL AUTO_INCREMENT,
  at BIGINT NOT NULL,
  event VARCHAR(64) NOT NULL,
  email VARCHAR(512) NULL,
  source VARCHAR(100) NULL,
  user_id BIGINT NULL,
  detail TEXT NULL,
  PRIMARY KEY (id),
  KEY audit_log_at (at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per stored file; path is relative to the user's root, "/"-separated, UTF-8.
-- path_hash = SHA-256 of path's bytes (computed by the application).
CREATE TABLE files (
  user_id BIGINT NOT NULL,
  path_hash BINARY(32) NOT NULL,
  path VARBINARY(4096) NOT NULL,
  size BIGINT NOT NULL,
  sha256 CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  modified BIGINT NOT NULL,
  PRIMARY KEY (user_id, path_hash),
  KEY files_user_path (user_id, path(3000)),
  CONSTRAINT files_user FOREIGN KEY (user_id) REFERENCES user_data (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

/**
 * The schema migrations of both database dialects, in order.
 *
 * The SQL files are imported as text (`with { type: "text" }`), so `deno bundle` and
 * `deno compile` inline them: the bundled program needs no `sql/` folder at run time.
 *
 * To add a migration: write `sql/sqlite/NNN_name.sql` and `sql/mysql/NNN_name.sql`, import
 * both below and append them to both lists with the next version number.
 * tests/sql/mod_test.ts checks that every file on disk is listed here.
 *
 * @module
 */

import mysql001 from "./mysql/001_init.sql" with { type: "text" };
import sqlite001 from "./sqlite/001_init.sql" with { type: "text" };

/** One schema migration: applied once, in `version` order, and recorded. */
export interface Migration {
  /** Positive integer, strictly increasing through the list. */
  readonly version: number;
  /** File name without `.sql`, e.g. `001_init`. */
  readonly name: string;
  /** The SQL text; statements end with ";" at the end of a line. */
  readonly sql: string;
}

/** Every migration of each dialect, oldest first. */
export const MIGRATIONS: Readonly<Record<"sqlite" | "mysql", readonly Migration[]>> = {
  sqlite: [
    { version: 1, name: "001_init", sql: sqlite001 },
  ],
  mysql: [
    { version: 1, name: "001_init", sql: mysql001 },
  ],
};

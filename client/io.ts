/**
 * Types shared by the scriptable commands: where they print and their signature.
 *
 * @module
 */

import type { CloudClient } from "./client.ts";
import type { ConnectOptions } from "./options.ts";

/** Where a command prints: `out` for results (stdout), `err` for messages (stderr). */
export interface CommandIo {
  out(line: string): void;
  err(line: string): void;
}

/** Standard output and error. */
export const consoleIo: CommandIo = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

/** A scriptable command run on a connected client; resolves to an exit code. */
export type Command = (
  client: CloudClient,
  args: string[],
  options: ConnectOptions,
  io: CommandIo,
) => Promise<number>;

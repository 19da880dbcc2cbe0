/**
 * Options of `cloud connect`, host parsing, credentials from the environment, stdin or a
 * masked prompt.
 *
 * @module
 */

import process from "node:process";
import { CloudError } from "../protocol/errors.ts";

/** Default TCP port of `cloud serve`. */
export const DEFAULT_PORT = 7070;

/** Options of `cloud connect`, as parsed from the command line. */
export interface ConnectOptions {
  host?: string;
  fingerprint?: string;
  trust?: boolean;
  email?: string;
  passwordStdin?: boolean;
  json?: boolean;
  name?: string;
  phone?: string;
  to?: string;
  out?: string;
  overwrite?: boolean;
  recursive?: boolean;
  parents?: boolean;
  timeout?: string;
  discoveryPort?: string;
}

/** A usage error: exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
  readonly exitCode = 2;
}

/** Parses `HOST`, `HOST:PORT`, `[V6]`, `[V6]:PORT` or a bare IPv6 address. */
export function parseHostPort(text: string, defaultPort = DEFAULT_PORT): {
  host: string;
  port: number;
} {
  const trimmed = text.trim();
  let host = trimmed;
  let port = defaultPort;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if ((trimmed.match(/:/g) ?? []).length === 1) {
    const [h, p] = trimmed.split(":");
    host = h!;
    port = Number(p);
  }
  if (host === "" || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`Invalid address "${text}": use HOST or HOST:PORT`);
  }
  return { host, port };
}

/** Reads all of stdin as text. */
async function readStdin(): Promise<string> {
  return await new Response(Deno.stdin.readable).text();
}

let stdinLines: string[] | null = null;

/** The next line of stdin (for --password-stdin; `passwd` reads two lines). */
export async function stdinLine(): Promise<string> {
  stdinLines ??= (await readStdin()).split(/\r?\n/);
  const line = stdinLines.shift();
  if (line === undefined || (line === "" && stdinLines.length === 0)) {
    throw new UsageError("Expected a password on stdin");
  }
  return line;
}

/** True when the user can answer prompts. */
export function canPrompt(): boolean {
  return Deno.stdin.isTerminal() && Deno.stderr.isTerminal();
}

/** A masked prompt (never echoes). */
export async function promptSecret(message: string): Promise<string> {
  const { password } = await import("@inquirer/prompts");
  return await password({ message, mask: "*" }, { output: process.stderr });
}

/** The password: CLOUD_PASSWORD, else --password-stdin, else a masked prompt. */
export async function getPassword(options: ConnectOptions, label = "Password"): Promise<string> {
  const fromEnv = Deno.env.get("CLOUD_PASSWORD");
  if (fromEnv !== undefined) return fromEnv;
  if (options.passwordStdin) return await stdinLine();
  if (canPrompt()) return await promptSecret(label);
  throw new UsageError(
    "No password: set CLOUD_PASSWORD, use --password-stdin or run in a terminal",
  );
}

/** The new password of `passwd`: CLOUD_NEW_PASSWORD, else stdin's next line, else a prompt. */
export async function getNewPassword(options: ConnectOptions): Promise<string> {
  const fromEnv = Deno.env.get("CLOUD_NEW_PASSWORD");
  if (fromEnv !== undefined) return fromEnv;
  if (options.passwordStdin) return await stdinLine();
  if (canPrompt()) {
    const first = await promptSecret("New password");
    const second = await promptSecret("Repeat new password");
    if (first !== second) throw new CloudError("E_INVALID", "The two new passwords differ");
    return first;
  }
  throw new UsageError("No new password: set CLOUD_NEW_PASSWORD or run in a terminal");
}

/** The email: --email, else CLOUD_EMAIL, else a prompt. */
export async function getEmail(options: ConnectOptions): Promise<string> {
  const email = options.email ?? Deno.env.get("CLOUD_EMAIL");
  if (email !== undefined && email !== "") return email;
  if (canPrompt()) {
    const { input } = await import("@inquirer/prompts");
    return await input({ message: "Email" }, { output: process.stderr });
  }
  throw new UsageError("No email: use --email or set CLOUD_EMAIL");
}

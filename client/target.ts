/**
 * Which server `cloud connect` talks to when no `--host` is given: LAN discovery first
 * (one server: use it; several: let the user pick), else the address typed (the last one
 * used is remembered and offered).
 *
 * @module
 */

import { join } from "node:path";
import process from "node:process";
import { CloudError } from "../protocol/errors.ts";
import { parseDuration } from "../protocol/units.ts";
import { discover, type DiscoveredServer } from "./discovery.ts";
import type { CommandIo } from "./io.ts";
import {
  canPrompt,
  type ConnectOptions,
  DEFAULT_PORT,
  parseHostPort,
  UsageError,
} from "./options.ts";
import { defaultConfigDir, TrustStore } from "./trust.ts";

const LAST_HOST_FILE = "last_host";

/** The last address the user connected to, if any. */
export async function readLastHost(configDir: string = defaultConfigDir()): Promise<string | null> {
  try {
    const text = (await Deno.readTextFile(join(configDir, LAST_HOST_FILE))).trim();
    return text === "" ? null : text;
  } catch {
    return null;
  }
}

/** Remembers the address used, for the next time no server is found. */
export async function writeLastHost(
  address: string,
  configDir: string = defaultConfigDir(),
): Promise<void> {
  await Deno.mkdir(configDir, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(join(configDir, LAST_HOST_FILE), `${address}\n`);
}

function describe(server: DiscoveredServer, pinned: string | undefined): string {
  const warning = pinned && pinned !== server.fingerprint ? "  !! FINGERPRINT CHANGED" : "";
  return `${server.name} at ${server.address}:${server.port} sha256:${
    server.fingerprint.slice(0, 16)
  }…${pinned === server.fingerprint ? " (trusted)" : ""}${warning}`;
}

/** Finds the server to use when `--host` is absent. */
export async function resolveServer(
  options: ConnectOptions,
  io: CommandIo,
): Promise<{ host: string; port: number }> {
  const timeoutMs = options.timeout ? parseDuration(options.timeout) : 1500;
  const port = options.discoveryPort ? Number(options.discoveryPort) : undefined;
  const servers = await discover({ timeoutMs, ...(port ? { port } : {}) }).catch(() => []);
  const store = new TrustStore(defaultConfigDir());
  if (servers.length === 1) {
    const only = servers[0]!;
    io.err(`Found ${describe(only, (await store.get(only.address, only.port))?.fingerprint)}`);
    return { host: only.address, port: only.port };
  }
  if (servers.length > 1) {
    if (!canPrompt()) {
      throw new UsageError(
        `Found ${servers.length} servers; choose one with --host (see \`cloud discover\`)`,
      );
    }
    const { select } = await import("@inquirer/prompts");
    const choices = [];
    for (const server of servers) {
      const pinned = (await store.get(server.address, server.port))?.fingerprint;
      choices.push({ name: describe(server, pinned), value: server });
    }
    const chosen = await select({ message: "Which server?", choices }, { output: process.stderr });
    return { host: chosen.address, port: chosen.port };
  }
  if (!canPrompt()) {
    throw new CloudError(
      "E_UNREACHABLE",
      "No server found on the local network; give its address with --host HOST[:PORT]",
    );
  }
  const last = await readLastHost();
  const { input } = await import("@inquirer/prompts");
  const typed = await input({
    message: `No server found nearby. Server address (HOST[:PORT], default port ${DEFAULT_PORT})`,
    ...(last ? { default: last } : {}),
    validate: (value: string) => {
      try {
        parseHostPort(value);
        return true;
      } catch (error) {
        return (error as Error).message;
      }
    },
  }, { output: process.stderr });
  await writeLastHost(typed.trim()).catch(() => {});
  return parseHostPort(typed);
}

/**
 * `cloud discover`: probe the LAN, print each server once with its pin state.
 *
 * @module
 */

import { annotatePins, discover, formatServers } from "./discovery.ts";
import { type CommandIo, consoleIo } from "./io.ts";
import { defaultConfigDir, hostKey, TrustStore } from "./trust.ts";

/** Options of {@link runDiscover}. */
export interface DiscoverCommandOptions {
  timeoutMs: number;
  json: boolean;
  /** UDP discovery port. */
  port: number;
}

/** Runs `cloud discover`; resolves to the exit code (0, also when nothing was found). */
export async function runDiscover(
  options: DiscoverCommandOptions,
  io: CommandIo = consoleIo,
): Promise<number> {
  const servers = await discover({ timeoutMs: options.timeoutMs, port: options.port });
  const pins = new Map<string, string>();
  for (const entry of await new TrustStore(defaultConfigDir()).list()) {
    pins.set(entry.key, entry.fingerprint);
  }
  const annotated = annotatePins(servers, (host, port) => pins.get(hostKey(host, port)));
  const text = formatServers(annotated, { json: options.json });
  if (options.json || servers.length > 0) io.out(text);
  else io.err(text);
  return 0;
}

/**
 * `cloud serve`: start the server, print the ready line, stop cleanly on SIGINT/SIGTERM.
 *
 * @module
 */

import { formatEvent, type LogFormat } from "./log.ts";
import { startServer } from "./server.ts";
import { DEFAULT_TIMEOUTS } from "./session.ts";

/** Options as parsed by main.ts. */
export interface ServeCliOptions {
  host: string;
  port: number;
  data: string;
  db?: string;
  tlsCert?: string;
  tlsKey?: string;
  discovery: boolean;
  discoveryPort: number;
  announce?: string[];
  quota: number | null;
  maxFileSize: number | null;
  bcryptCost: number;
  logFormat: LogFormat;
  name?: string;
  /** Idle limit before login, in milliseconds (SPEC: 15 s). */
  idleTimeoutMs?: number;
}

/** The ready line of SPEC section 2. */
export function readyLine(
  format: LogFormat,
  host: string,
  port: number,
  fingerprint: string,
): string {
  if (format === "json") {
    return formatEvent("json", "listening", { host, port, fingerprint: `sha256:${fingerprint}` });
  }
  const shown = host.includes(":") ? `[${host}]` : host;
  return `listening on ${shown}:${port} fingerprint sha256:${fingerprint}`;
}

/** Runs the server until a signal; resolves to the exit code. */
export async function runServe(options: ServeCliOptions): Promise<number> {
  const server = await startServer({
    host: options.host,
    port: options.port,
    dataDir: options.data,
    ...(options.db ? { dbUrl: options.db } : {}),
    ...(options.tlsCert ? { tlsCert: options.tlsCert } : {}),
    ...(options.tlsKey ? { tlsKey: options.tlsKey } : {}),
    discovery: options.discovery,
    discoveryPort: options.discoveryPort,
    ...(options.announce ? { announce: options.announce } : {}),
    quota: options.quota,
    maxFileSize: options.maxFileSize,
    bcryptCost: options.bcryptCost,
    logFormat: options.logFormat,
    ...(options.name ? { serverName: options.name } : {}),
    timeouts: {
      ...DEFAULT_TIMEOUTS,
      unauthenticatedIdleMs: options.idleTimeoutMs ?? DEFAULT_TIMEOUTS.unauthenticatedIdleMs,
    },
  });
  console.log(readyLine(options.logFormat, server.hostname, server.port, server.fingerprint));
  server.logStart();

  const { promise: stopped, resolve } = Promise.withResolvers<string>();
  const onInt = () => resolve("SIGINT");
  const onTerm = () => resolve("SIGTERM");
  Deno.addSignalListener("SIGINT", onInt);
  Deno.addSignalListener("SIGTERM", onTerm);
  await stopped;
  Deno.removeSignalListener("SIGINT", onInt);
  Deno.removeSignalListener("SIGTERM", onTerm);
  await server.shutdown(10_000);
  return 0;
}

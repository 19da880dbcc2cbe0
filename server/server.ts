/**
 * The `cloud serve` process: database, storage, hashing pool, TLS listener, sessions,
 * discovery and graceful shutdown, wired together.
 *
 * @module
 */

import { hostname as machineHostname } from "node:os";
import { CloudError } from "../protocol/errors.ts";
import { encodeFrame, encodePreamble } from "../protocol/frame.ts";
import type { HandlerTable, ServerContext } from "./context.ts";
import { accountHandlers } from "./handlers/accounts.ts";
import { fileHandlers } from "./handlers/files.ts";
import { HasherPool } from "./hasher.ts";
import { LoginGuard } from "./lockout.ts";
import { sourceKey } from "./source.ts";
import { type LogFormat, Logger } from "./log.ts";
import {
  DEFAULT_TIMEOUTS,
  isConnectionError,
  runSession,
  type SessionTimeouts,
} from "./session.ts";
import { LocalStorage } from "./storage_local.ts";
import { defaultDbUrl, openStore, redactDbUrl } from "./db/open.ts";
import { type AcceptedConnection, listenTls13 } from "./listener.ts";
import { loadCertificate, loadOrCreateCertificate, type ServerCertificate } from "./tls.ts";
import { startDiscovery } from "./discovery.ts";

/** ALPN protocol id of protocol v1. */
export const ALPN = "cloud/1";

/** Options of {@link startServer}; defaults are those of SPEC section 2. */
export interface ServeOptions {
  /** Address to listen on. Default "0.0.0.0". */
  host: string;
  /** TCP port; 0 picks a free one. Default 7070. */
  port: number;
  /** Data directory. Default "./cloud-data". */
  dataDir: string;
  /** Database URL; default `sqlite:<dataDir>/cloud.db`. */
  dbUrl?: string;
  /** Certificate and key files; default a generated self-signed one in `<dataDir>/tls/`. */
  tlsCert?: string;
  tlsKey?: string;
  /** Announce and answer probes on the discovery port. */
  discovery: boolean;
  discoveryPort: number;
  /** Broadcast addresses to announce to (default: every IPv4 interface's). */
  announce?: string[];
  /** Default quota per user in bytes; null is unlimited. */
  quota: number | null;
  /** Largest file in bytes; null is unlimited. */
  maxFileSize: number | null;
  /** bcrypt cost. Default 12. */
  bcryptCost: number;
  logFormat: LogFormat;
  /** Where log lines go. Default stdout. */
  logSink?: (line: string) => void;
  /** Name shown in hello and discovery. Default the machine's host name. */
  serverName?: string;
  /** Concurrent connections allowed per source address. Default 32. */
  maxConnectionsPerSource?: number;
  timeouts?: SessionTimeouts;
}

/** A running server. */
export interface RunningServer {
  hostname: string;
  port: number;
  /** SHA-256 of the certificate, 64 lower-case hex digits. */
  fingerprint: string;
  certificate: ServerCertificate;
  /** Logs the start event (database, data dir, discovery), after the ready line. */
  logStart(): void;
  /** Stops accepting, lets running requests finish for up to `graceMs`, closes everything. */
  shutdown(graceMs?: number): Promise<void>;
}

/** Starts a server and resolves once it is listening. */
export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const log = new Logger(options.logFormat, options.logSink ?? ((line) => console.log(line)));
  await Deno.mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const dbUrl = options.dbUrl ?? defaultDbUrl(options.dataDir);
  const store = await openStore(dbUrl);
  const storage = new LocalStorage(options.dataDir);
  const cleaned = await storage.cleanup(24 * 3600_000);
  if (cleaned > 0) log.event("tmp_cleanup", { removed: cleaned });
  const hasher = new HasherPool({ cost: options.bcryptCost });

  const guard = new LoginGuard(store);
  const serverName = options.serverName ?? machineHostname();
  const ctx: ServerContext = {
    store,
    storage,
    hasher,
    guard,
    log,
    reserved: new Map(),
    limits: {
      serverName,
      defaultQuota: options.quota,
      maxFileSize: options.maxFileSize,
      maxInlineBytes: 1024 * 1024,
    },
  };
  const certificate = options.tlsCert && options.tlsKey
    ? await loadCertificate(options.tlsCert, options.tlsKey)
    : await loadOrCreateCertificate(options.dataDir);

  const handlers: HandlerTable = { ...accountHandlers, ...fileHandlers };
  const timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
  const maxPerSource = options.maxConnectionsPerSource ?? 32;
  const perSource = new Map<string, number>();
  const conns = new Set<AcceptedConnection>();
  const sessions = new Set<Promise<void>>();
  const shutdownController = new AbortController();

  const serveConn = async (conn: AcceptedConnection) => {
    const remote = conn.remoteAddress;
    // Counted per lockout source (an IPv6 /56), not per address: a subscriber has many.
    const sourceOf = (() => {
      try {
        return sourceKey(remote);
      } catch {
        return remote;
      }
    })();
    const count = (perSource.get(sourceOf) ?? 0) + 1;
    perSource.set(sourceOf, count);
    conns.add(conn);
    try {
      if (conn.alpnProtocol !== ALPN) {
        log.event("conn_refused", { src: remote, reason: "no ALPN cloud/1" });
        return;
      }
      if (count > maxPerSource) {
        log.event("conn_refused", { src: remote, reason: "too many connections" });
        const busy = new CloudError("E_BUSY", "Too many connections from your address");
        const writer = conn.writable.getWriter();
        await writer.write(encodePreamble());
        await writer.write(encodeFrame({ t: "error", code: busy.code, message: busy.message }));
        await writer.close();
        return;
      }
      await runSession(ctx, conn, {
        address: remote,
        handlers,
        timeouts,
        signal: shutdownController.signal,
      });
    } catch (error) {
      if (!isConnectionError(error)) {
        log.event("conn_error", { src: remote, message: String(error) });
      }
    } finally {
      conns.delete(conn);
      const left = (perSource.get(sourceOf) ?? 1) - 1;
      if (left <= 0) perSource.delete(sourceOf);
      else perSource.set(sourceOf, left);
      conn.close();
    }
  };

  const listener = await listenTls13({
    hostname: options.host,
    port: options.port,
    certPem: certificate.certPem,
    keyPem: certificate.keyPem,
    alpnProtocols: [ALPN],
    handshakeTimeoutMs: timeouts.unauthenticatedIdleMs,
    onConnection: (conn) => {
      if (shutdownController.signal.aborted) {
        conn.close();
        return;
      }
      const session = serveConn(conn);
      sessions.add(session);
      session.finally(() => sessions.delete(session));
    },
    onHandshakeError: (src, message) => log.event("tls_refused", { src, message }),
  });
  const address = { hostname: listener.hostname, port: listener.port };

  const startAnnouncer = async () => {
    try {
      return await startDiscovery({
        port: options.discoveryPort,
        serverName,
        tcpPort: address.port,
        fingerprint: certificate.fingerprint,
        ...(options.announce && options.announce.length > 0 ? { announce: options.announce } : {}),
        log: (event, fields) => log.event(event, fields as Record<string, string>),
      });
    } catch (error) {
      // Serving files matters more than being found: go on without discovery.
      log.event("discovery_failed", { port: options.discoveryPort, message: String(error) });
      return null;
    }
  };
  const discovery = options.discovery ? await startAnnouncer() : null;

  let closing: Promise<void> | null = null;
  const shutdown = (graceMs = 10_000) => {
    closing ??= (async () => {
      log.event("shutdown", { sessions: sessions.size });
      shutdownController.abort();
      listener.close();
      await discovery?.close();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([Promise.allSettled([...sessions]), grace]);
      clearTimeout(timer);
      for (const conn of conns) conn.close();
      await Promise.allSettled([...sessions]);
      hasher.close();
      await store.close();
    })();
    return closing;
  };

  return {
    logStart: () =>
      log.event("start", {
        db: redactDbUrl(dbUrl),
        data: options.dataDir,
        discovery: discovery ? options.discoveryPort : "off",
      }),
    hostname: address.hostname,
    port: address.port,
    fingerprint: certificate.fingerprint,
    certificate,
    shutdown,
  };
}

/**
 * Finding servers on the LAN (SPEC.md section 5): broadcast probes, collect replies and
 * announcements, dedupe, and mark each server against the pinned fingerprints so a spoofed
 * announcement is shown as a warning, never trusted.
 *
 * The socket part is {@link discover}; the bookkeeping is the pure
 * {@link DiscoveryCollector}; {@link annotatePins} and {@link formatServers} serve the CLI.
 *
 * @example
 * ```ts
 * const servers = await discover({ timeoutMs: 1000 });
 * console.log(formatServers(annotatePins(servers, () => undefined), { json: false }));
 * ```
 *
 * @module
 */

import {
  decodePacket,
  DEFAULT_DISCOVERY_PORT,
  type DiscoveryPacket,
  encodePacket,
  type InterfaceInfo,
  ipv4BroadcastAddresses,
  MAX_PACKET_BYTES,
  newRandomId,
  normalizeFingerprint,
} from "../protocol/discovery.ts";

/** A server found on the LAN. */
export interface DiscoveredServer {
  /** Source address of the datagram: where the server's TCP service is reachable. */
  address: string;
  /** TCP port of the service. */
  port: number;
  /** Name the server announces (printable, at most 128 UTF-8 bytes). */
  name: string;
  /** Certificate fingerprint, 64 lower-case hex digits (no `sha256:` prefix). */
  fingerprint: string;
  /** Random id of the server process. */
  instanceId: string;
  /** Whether it answered one of our probes or was heard announcing. */
  via: "reply" | "announce";
  /** Wire protocol version the server speaks. */
  protocolVersion: number;
}

/** Whether a server's fingerprint matches what the trust store holds for its address. */
export type PinState = "yes" | "no" | "MISMATCH";

/** A discovered server marked against the trust store. */
export interface AnnotatedServer extends DiscoveredServer {
  /** "yes": pinned and equal; "no": nothing pinned; "MISMATCH": pinned and different. */
  pinned: PinState;
  /** The pinned fingerprint (64 hex), when there is one. */
  pinnedFingerprint?: string;
}

/** Options of {@link DiscoveryCollector}. */
export interface DiscoveryCollectorOptions {
  /** Clock in milliseconds. Default `Date.now`. */
  now?: () => number;
  /** Forget a server not heard from for this long. Default: never. */
  maxAgeMs?: number;
}

interface Entry {
  server: DiscoveredServer;
  lastSeen: number;
}

/**
 * The pure bookkeeping of discovery: accepts decoded packets with their source address and
 * keeps one entry per server.
 *
 * Two packets describe the same server when fingerprint and TCP port are equal and either
 * the instance id or the address is: so a server heard on two addresses, or restarted with
 * the same certificate, is listed once, while a packet with a different fingerprint for a
 * known address (a spoof, or a new certificate) always gets an entry of its own and is
 * never merged into the trusted one. Replies count only when they echo a nonce registered
 * with {@link DiscoveryCollector.expectNonce}; probes are ignored.
 */
export class DiscoveryCollector {
  readonly #now: () => number;
  readonly #maxAgeMs: number;
  readonly #nonces = new Set<string>();
  readonly #entries: Entry[] = [];

  constructor(options: DiscoveryCollectorOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#maxAgeMs = options.maxAgeMs ?? Infinity;
  }

  /** Registers the nonce of a probe we sent, so replies to it are accepted. */
  expectNonce(nonce: string): void {
    this.#nonces.add(nonce);
  }

  /**
   * Takes in one packet received from `address`. Returns the server when it is new,
   * undefined when the packet was ignored or only refreshed a known server.
   */
  accept(packet: DiscoveryPacket, address: string): DiscoveredServer | undefined {
    if (packet.kind === "probe") return undefined;
    if (packet.kind === "reply" && !this.#nonces.has(packet.nonce)) return undefined;
    this.#expire();
    const now = this.#now();
    const known = this.#entries.find(({ server }) =>
      server.fingerprint === packet.fingerprint && server.port === packet.tcpPort &&
      (server.instanceId === packet.instanceId || server.address === address)
    );
    if (known !== undefined) {
      known.lastSeen = now;
      known.server.name = packet.name;
      known.server.instanceId = packet.instanceId;
      known.server.protocolVersion = packet.protocolVersion;
      if (packet.kind === "reply") known.server.via = "reply";
      return undefined;
    }
    const server: DiscoveredServer = {
      address,
      port: packet.tcpPort,
      name: packet.name,
      fingerprint: packet.fingerprint,
      instanceId: packet.instanceId,
      via: packet.kind,
      protocolVersion: packet.protocolVersion,
    };
    this.#entries.push({ server, lastSeen: now });
    return { ...server };
  }

  /** The servers heard from within `maxAgeMs`, in the order first found (copies). */
  servers(): DiscoveredServer[] {
    this.#expire();
    return this.#entries.map(({ server }) => ({ ...server }));
  }

  /** Number of servers currently known. */
  get size(): number {
    this.#expire();
    return this.#entries.length;
  }

  #expire(): void {
    const oldest = this.#now() - this.#maxAgeMs;
    for (let i = this.#entries.length - 1; i >= 0; i--) {
      if (this.#entries[i]!.lastSeen < oldest) this.#entries.splice(i, 1);
    }
  }
}

/**
 * The `address:port` keys announced with more than one fingerprint: someone may be
 * impersonating that server (or it changed its certificate).
 */
export function findConflicts(servers: readonly DiscoveredServer[]): Set<string> {
  const seen = new Map<string, string>();
  const conflicts = new Set<string>();
  for (const s of servers) {
    const key = endpoint(s);
    const fingerprint = seen.get(key);
    if (fingerprint === undefined) seen.set(key, s.fingerprint);
    else if (fingerprint !== s.fingerprint) conflicts.add(key);
  }
  return conflicts;
}

/**
 * Marks each server against the trust store: `lookup(host, port)` returns the pinned
 * fingerprint (any form {@link normalizeFingerprint} accepts) or undefined.
 */
export function annotatePins(
  servers: readonly DiscoveredServer[],
  lookup: (host: string, port: number) => string | undefined,
): AnnotatedServer[] {
  return servers.map((server) => {
    const raw = lookup(server.address, server.port);
    if (raw === undefined) return { ...server, pinned: "no" };
    // An unreadable pin is not a match: treat it as a mismatch rather than trusting.
    const pinnedFingerprint = normalizeFingerprint(raw) ?? raw;
    const pinned: PinState = pinnedFingerprint === server.fingerprint ? "yes" : "MISMATCH";
    return { ...server, pinned, pinnedFingerprint };
  });
}

/**
 * Formats servers for `cloud discover`. Text: a table (address, port, name, pinned state,
 * fingerprint) and one loud warning line per mismatch or conflict; "No servers found" when
 * empty. JSON: an array of objects with the `DiscoveredServer` fields, the fingerprint as
 * `sha256:<hex>` (the form `--fingerprint` takes), plus `pinned` and `conflict`.
 * No trailing newline.
 */
export function formatServers(
  servers: readonly (DiscoveredServer | AnnotatedServer)[],
  options: { json: boolean },
): string {
  const conflicts = findConflicts(servers);
  if (options.json) {
    return JSON.stringify(
      servers.map((s) => ({
        address: s.address,
        port: s.port,
        name: s.name,
        fingerprint: `sha256:${s.fingerprint}`,
        instanceId: s.instanceId,
        via: s.via,
        protocolVersion: s.protocolVersion,
        pinned: "pinned" in s ? s.pinned : null,
        ...("pinnedFingerprint" in s && s.pinnedFingerprint !== undefined
          ? { pinnedFingerprint: `sha256:${s.pinnedFingerprint}` }
          : {}),
        conflict: conflicts.has(endpoint(s)),
      })),
      null,
      2,
    );
  }
  if (servers.length === 0) return "No servers found";
  const rows = [["ADDRESS", "PORT", "NAME", "PINNED", "FINGERPRINT"]];
  for (const s of servers) {
    rows.push([
      s.address,
      String(s.port),
      s.name === "" ? "-" : s.name,
      "pinned" in s ? s.pinned : "?",
      `sha256:${s.fingerprint}`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join("  ").trimEnd());
  for (const s of servers) {
    if ("pinned" in s && s.pinned === "MISMATCH") {
      lines.push(
        `WARNING: ${endpoint(s)} ${JSON.stringify(s.name)} presents fingerprint ` +
          `sha256:${s.fingerprint} but sha256:${s.pinnedFingerprint} is pinned for it. ` +
          `It may be an impostor; connecting will be refused`,
      );
    }
  }
  for (const key of conflicts) {
    lines.push(
      `WARNING: ${key} is announced with different fingerprints. ` +
        `Someone may be impersonating it; compare with the fingerprint the server prints`,
    );
  }
  return lines.join("\n");
}

function endpoint(s: DiscoveredServer): string {
  return `${s.address}:${s.port}`;
}

// ---------------------------------------------------------------------------------------
// Sockets

/** Options of {@link discover}. */
export interface DiscoverOptions {
  /** UDP discovery port of the servers. Default 7071. */
  port?: number;
  /** How long to listen, in milliseconds. Default 2000. */
  timeoutMs?: number;
  /**
   * Where to send probes. Default: the subnet broadcast address of each non-loopback IPv4
   * interface. Unicast addresses work too (the server answers the same way).
   */
  broadcastAddresses?: string[];
  /** Resolve as soon as the first server is found. Default false. */
  stopAfterFirst?: boolean;
  /** Ends discovery early; the promise then resolves with the servers found so far. */
  signal?: AbortSignal;
  /** Called once for each new server, as soon as it is found. */
  onServer?: (server: DiscoveredServer) => void;
  /** When to send probes, in milliseconds from the start. Default [0, 250, 1000]. */
  probeScheduleMs?: number[];
  /** Source of interface information. Default `Deno.networkInterfaces`. */
  networkInterfaces?: () => InterfaceInfo[];
}

/**
 * Looks for servers on the LAN for `timeoutMs` and returns every server found, first
 * found first. Sends probes from an ephemeral port to each broadcast address (a failed
 * send on one is skipped) and also listens for announcements on the discovery port where
 * it can bind it (on each broadcast address, so unicast probes meant for a server on this
 * host are never taken away from it); replies alone suffice when it cannot.
 *
 * Resolves early with `stopAfterFirst` once a server is found, or when `signal` aborts.
 * Rejects only when no UDP socket can be opened at all, or when `onServer` throws.
 */
export async function discover(options: DiscoverOptions = {}): Promise<DiscoveredServer[]> {
  const port = options.port ?? DEFAULT_DISCOVERY_PORT;
  const timeoutMs = options.timeoutMs ?? 2000;
  const schedule = options.probeScheduleMs ?? [0, 250, 1000];
  const readInterfaces = options.networkInterfaces ?? (() => Deno.networkInterfaces());
  let interfaces: InterfaceInfo[] = [];
  try {
    interfaces = readInterfaces();
  } catch {
    // Without interface data only explicit addresses can be used.
  }
  const targets = options.broadcastAddresses ?? ipv4BroadcastAddresses(interfaces);
  const collector = new DiscoveryCollector();
  if (targets.length === 0 || options.signal?.aborted) return collector.servers();

  const probeSocket = Deno.listenDatagram({ transport: "udp", hostname: "0.0.0.0", port: 0 });
  const sockets: Deno.DatagramConn[] = [probeSocket];
  const knownBroadcasts = new Set([
    "255.255.255.255",
    ...ipv4BroadcastAddresses(interfaces, { includeLoopback: true }),
  ]);
  for (const target of new Set(targets)) {
    if (!knownBroadcasts.has(target)) continue;
    try {
      sockets.push(
        Deno.listenDatagram({ transport: "udp", hostname: target, port, reuseAddress: true }),
      );
    } catch {
      // The port is taken without address reuse, or the address is gone: replies suffice.
    }
  }

  const { promise, resolve, reject } = Promise.withResolvers<void>();
  let done = false;
  const timers: ReturnType<typeof setTimeout>[] = [];
  const finish = (error?: unknown) => {
    if (done) return;
    done = true;
    if (error === undefined) resolve();
    else reject(error);
  };
  const onAbort = () => finish();
  options.signal?.addEventListener("abort", onAbort, { once: true });
  timers.push(setTimeout(() => finish(), timeoutMs));

  const receiveLoop = async (socket: Deno.DatagramConn) => {
    const buffer = new Uint8Array(MAX_PACKET_BYTES + 1);
    while (!done) {
      let data: Uint8Array;
      let from: Deno.Addr;
      try {
        [data, from] = await socket.receive(buffer);
      } catch {
        return; // closed, or the socket failed: the other sockets and the timeout go on
      }
      if (from.transport !== "udp" || done) continue;
      const result = decodePacket(data);
      if (!result.ok) continue;
      const found = collector.accept(result.packet, from.hostname);
      if (found === undefined) continue;
      try {
        options.onServer?.(found);
      } catch (error) {
        finish(error);
        return;
      }
      if (options.stopAfterFirst) finish();
    }
  };
  const loops = sockets.map(receiveLoop);

  const instanceId = newRandomId();
  const probe = async () => {
    if (done) return;
    const nonce = newRandomId();
    collector.expectNonce(nonce);
    const bytes = encodePacket({ kind: "probe", instanceId, nonce });
    await Promise.all(targets.map(async (hostname) => {
      try {
        await probeSocket.send(bytes, { transport: "udp", hostname, port });
      } catch {
        // An unreachable network on one interface must not stop the others.
      }
    }));
  };
  const probes: Promise<void>[] = [];
  for (const at of schedule) {
    if (at >= timeoutMs) continue;
    if (at <= 0) probes.push(probe());
    else timers.push(setTimeout(() => probes.push(probe()), at));
  }

  try {
    await promise;
  } finally {
    done = true;
    for (const timer of timers) clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    for (const socket of sockets) {
      try {
        socket.close();
      } catch {
        // Already closed.
      }
    }
    await Promise.allSettled([...loops, ...probes]);
  }
  return collector.servers();
}

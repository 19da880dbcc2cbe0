/**
 * The discovery announcer (SPEC.md section 5): announces the server by UDP broadcast every
 * few seconds and answers a client's probe with a unicast reply at once — only probes from
 * the server's own subnets, never larger than the probe, rate-limited per source.
 *
 * @example
 * ```ts
 * const discovery = await startDiscovery({
 *   port: 7071,
 *   serverName: Deno.hostname(),
 *   tcpPort: 7070,
 *   fingerprint: "sha256:" + "ab".repeat(32),
 * });
 * // ...
 * await discovery.close();
 * ```
 *
 * @module
 */

import {
  ANNOUNCED_PROTOCOL_VERSION,
  decodePacket,
  encodePacket,
  type InterfaceInfo,
  ipv4BroadcastAddresses,
  isInLocalSubnet,
  MAX_PACKET_BYTES,
  newRandomId,
  normalizeFingerprint,
  sanitizeServerName,
  type ServerDescription,
} from "../protocol/discovery.ts";

/** Options of {@link startDiscovery}. */
export interface StartDiscoveryOptions {
  /** UDP discovery port to bind (7071 in production; 0 picks a free one). */
  port: number;
  /** Name to announce; unprintable characters become `?`, cut to 128 UTF-8 bytes. */
  serverName: string;
  /** TCP port of the `cloud` service. */
  tcpPort: number;
  /** Certificate fingerprint, `sha256:<64 hex>` or bare hex. */
  fingerprint: string;
  /**
   * Addresses to send announcements to. Default: the subnet broadcast address of each
   * non-loopback IPv4 interface, re-read at every announcement.
   */
  announce?: string[];
  /** Milliseconds between announcements. Default 2000. */
  intervalMs?: number;
  /** Address to bind. Default `0.0.0.0`. */
  hostname?: string;
  /** Probe answers allowed per source address per second (token bucket). Default 5. */
  repliesPerSecond?: number;
  /** Structured event sink (`discovery.*` events); nothing is logged by default. */
  log?: (event: string, fields: Record<string, unknown>) => void;
  /** Source of interface information. Default `Deno.networkInterfaces`. */
  networkInterfaces?: () => InterfaceInfo[];
}

/** A running announcer. */
export interface DiscoveryHandle {
  /** Stops the timer and closes the socket; resolves when everything has stopped. */
  close(): Promise<void>;
  /** The random id in this server's packets, 32 hex digits. */
  instanceId: string;
  /** The UDP port actually bound. */
  port: number;
}

/** Options of {@link RateLimiter}. */
export interface RateLimiterOptions {
  /** Tokens added per second. */
  ratePerSecond: number;
  /** Bucket size (largest burst). Default: `ratePerSecond`, at least 1. */
  burst?: number;
  /** Most keys tracked at once; new keys beyond it are refused. Default 4096. */
  maxKeys?: number;
  /** Clock in milliseconds. Default `Date.now`. */
  now?: () => number;
}

/**
 * A token bucket per key, with a bounded number of keys so a flood of sources cannot
 * exhaust memory: when the table is full, keys whose bucket has refilled are dropped, and
 * if none has, the new key is refused (refusing is the safe answer).
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(options: RateLimiterOptions) {
    if (!(options.ratePerSecond > 0)) {
      throw new RangeError(`Rate "${options.ratePerSecond}" must be positive`);
    }
    this.#rate = options.ratePerSecond;
    this.#burst = options.burst ?? Math.max(1, options.ratePerSecond);
    if (!(this.#burst >= 1)) throw new RangeError(`Burst "${this.#burst}" must be at least 1`);
    this.#maxKeys = options.maxKeys ?? 4096;
    this.#now = options.now ?? Date.now;
  }

  /** Takes one token for `key`; false when its bucket is empty. */
  take(key: string): boolean {
    const now = this.#now();
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= this.#maxKeys && !this.#prune(now)) return false;
      bucket = { tokens: this.#burst, at: now };
      this.#buckets.set(key, bucket);
    } else {
      const elapsed = Math.max(0, now - bucket.at);
      bucket.tokens = Math.min(this.#burst, bucket.tokens + (elapsed * this.#rate) / 1000);
      bucket.at = now;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Number of keys tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Drops buckets that have refilled; true when room was made. */
  #prune(now: number): boolean {
    for (const [key, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) * this.#rate) / 1000 >= this.#burst) {
        this.#buckets.delete(key);
      }
    }
    return this.#buckets.size < this.#maxKeys;
  }
}

/**
 * Binds the discovery port and starts announcing. Sends one announcement at once (resolves
 * once it has gone out), then one every `intervalMs`; answers valid probes from a local subnet with a unicast reply.
 * Bad datagrams are dropped; a failed send on one address does not stop the others.
 *
 * Throws TypeError for an invalid fingerprint, RangeError for a bad port, and the
 * `Deno.errors` of `Deno.listenDatagram` when the port cannot be bound.
 */
export async function startDiscovery(options: StartDiscoveryOptions): Promise<DiscoveryHandle> {
  const fingerprint = normalizeFingerprint(options.fingerprint);
  if (fingerprint === undefined) {
    throw new TypeError(`Fingerprint "${options.fingerprint}" is not a SHA-256 fingerprint`);
  }
  const intervalMs = options.intervalMs ?? 2000;
  if (!(intervalMs > 0)) throw new RangeError(`Interval "${intervalMs}" must be positive`);
  const log = options.log ?? (() => {});
  const readInterfaces = options.networkInterfaces ?? (() => Deno.networkInterfaces());
  const instanceId = newRandomId();
  const description: ServerDescription = {
    instanceId,
    tcpPort: options.tcpPort,
    protocolVersion: ANNOUNCED_PROTOCOL_VERSION,
    fingerprint,
    name: sanitizeServerName(options.serverName),
  };
  // Encoding here validates the port before the socket is bound.
  const announcement = encodePacket({ kind: "announce", ...description });

  const conn = Deno.listenDatagram({
    transport: "udp",
    hostname: options.hostname ?? "0.0.0.0",
    port: options.port,
    reuseAddress: true,
  });
  const port = (conn.addr as Deno.NetAddr).port;
  const perSource = new RateLimiter({ ratePerSecond: options.repliesPerSecond ?? 5 });
  const overall = new RateLimiter({ ratePerSecond: 100 });
  const refusalLog = new RateLimiter({ ratePerSecond: 1 / 60, burst: 1, maxKeys: 256 });
  const failing = new Set<string>();
  let interfaces: InterfaceInfo[] = [];
  let closed = false;

  const refreshInterfaces = () => {
    try {
      interfaces = readInterfaces();
    } catch (error) {
      log("discovery.interfaces_failed", { error: String(error) });
    }
  };

  const send = async (bytes: Uint8Array, hostname: string, to: number): Promise<void> => {
    try {
      await conn.send(bytes, { transport: "udp", hostname, port: to });
      if (failing.delete(hostname)) log("discovery.send_recovered", { address: hostname });
    } catch (error) {
      if (closed) return;
      if (!failing.has(hostname)) {
        failing.add(hostname);
        log("discovery.send_failed", { address: hostname, port: to, error: String(error) });
      }
    }
  };

  let ticking: Promise<void> = Promise.resolve();
  let busy = false;
  let warnedNoTarget = false;
  const tick = () => {
    if (closed || busy) return;
    busy = true;
    ticking = (async () => {
      refreshInterfaces();
      const targets = options.announce ?? ipv4BroadcastAddresses(interfaces);
      if (targets.length === 0 && !warnedNoTarget) {
        warnedNoTarget = true;
        log("discovery.no_broadcast_address", {});
      }
      // Each send is caught on its own, so one failing interface does not stop the rest.
      await Promise.all(targets.map((target) => send(announcement, target, port)));
    })().finally(() => {
      busy = false;
    });
  };

  const refuse = (reason: string, source: string) => {
    if (refusalLog.take(`${reason}|${source}`)) {
      log("discovery.probe_refused", { reason, source });
    }
  };

  const answer = async (data: Uint8Array, from: Deno.Addr): Promise<void> => {
    const result = decodePacket(data);
    if (!result.ok) return;
    const packet = result.packet;
    if (packet.kind !== "probe" || packet.instanceId === instanceId) return;
    if (from.transport !== "udp") return;
    if (!isInLocalSubnet(from.hostname, interfaces)) return refuse("subnet", from.hostname);
    if (!overall.take("*") || !perSource.take(from.hostname)) {
      return refuse("rate", from.hostname);
    }
    const reply = encodePacket({ kind: "reply", nonce: packet.nonce, ...description });
    // PROBE_BYTES >= MAX_REPLY_BYTES makes this hold; checked again so it always does.
    if (reply.length > data.length) return refuse("small", from.hostname);
    await send(reply, from.hostname, from.port);
  };

  const pending = new Set<Promise<void>>();
  const receiving = (async () => {
    const buffer = new Uint8Array(MAX_PACKET_BYTES + 1);
    let errors = 0;
    while (!closed) {
      let datagram: [Uint8Array, Deno.Addr];
      try {
        datagram = await conn.receive(buffer);
        errors = 0;
      } catch (error) {
        if (closed) return;
        log("discovery.receive_failed", { error: String(error) });
        if (++errors >= 10) return;
        continue;
      }
      // Decoding is synchronous, so the shared buffer is free again when answer() awaits.
      const task = answer(datagram[0], datagram[1]).catch((error) => {
        log("discovery.internal_error", { error: String(error) });
      });
      pending.add(task);
      task.finally(() => pending.delete(task));
    }
  })();

  refreshInterfaces();
  log("discovery.started", { port, instanceId, name: description.name });
  const timer = setInterval(tick, intervalMs);
  tick();
  await ticking; // the first announcement has gone out (or failed and been logged)

  return {
    instanceId,
    port,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      conn.close();
      await Promise.allSettled([receiving, ticking, ...pending]);
    },
  };
}

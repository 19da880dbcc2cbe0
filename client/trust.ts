/**
 * Trust on first use, like OpenSSH's `known_hosts`: the store of pinned server
 * certificates, and the untrusted probe that fetches a server's certificate to show and
 * pin it (Deno's own TLS API never exposes the peer certificate; `node:tls` does).
 *
 * The store is one JSON file, `<config dir>/known_hosts.json`, written atomically with
 * mode 0600:
 *
 * ```json
 * { "version": 1, "hosts": { "192.0.2.7:7070": { "fingerprint": "…", "certPem": "…", "addedAt": "…" } } }
 * ```
 *
 * @module
 */

import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { isIP } from "node:net";
import { join } from "node:path";
import tls from "node:tls";
import { z } from "zod";
import { CloudError } from "../protocol/errors.ts";
import { ALPN_PROTOCOL, fingerprintOf, isSelfSigned, parseFingerprint } from "../server/tls.ts";

/** A pinned server certificate. */
export interface KnownHost {
  /** SHA-256 of the certificate's DER, 64 lower-case hex digits. */
  fingerprint: string;
  /** The certificate as PEM, used as the only trusted root when connecting. */
  certPem: string;
  /** When it was pinned (ISO 8601). */
  addedAt: string;
}

/** A pinned server certificate with the address it belongs to. */
export interface KnownHostEntry extends KnownHost {
  /** The store key, `host:port` (IPv6 in brackets). */
  key: string;
  /** The normalised host name or address (IPv6 without brackets). */
  host: string;
  /** The TCP port. */
  port: number;
}

/**
 * The user's configuration directory: `$CLOUD_CONFIG_DIR`, else `$XDG_CONFIG_HOME/cloud`,
 * else `~/.config/cloud`.
 *
 * @throws {Error} when none of these variables nor a home directory is set
 */
export function defaultConfigDir(): string {
  const own = Deno.env.get("CLOUD_CONFIG_DIR");
  if (own) return own;
  const xdg = Deno.env.get("XDG_CONFIG_HOME");
  if (xdg && xdg.startsWith("/")) return join(xdg, "cloud");
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  if (home) return join(home, ".config", "cloud");
  throw new Error("Cannot find a configuration directory; set CLOUD_CONFIG_DIR or HOME");
}

/**
 * Normalises a host name or address: lower case, no trailing dot, IPv6 in canonical form
 * without brackets or zone.
 *
 * @throws {TypeError} when `host` is empty
 */
export function normaliseHost(host: string): string {
  let value = host.trim().toLowerCase();
  if (value.startsWith("[") && value.endsWith("]")) value = value.slice(1, -1);
  value = value.replace(/\.$/, "");
  if (value === "") throw new TypeError(`Invalid host "${host}"`);
  if (isIP(value.replace(/%.*$/, "")) === 6) {
    // The URL parser prints IPv6 addresses in their canonical (RFC 5952) form.
    value = new URL(`http://[${value.replace(/%.*$/, "")}]/`).hostname.slice(1, -1);
  }
  return value;
}

/**
 * The store key and display form of an address: `host:port`, IPv6 in brackets.
 *
 * @throws {TypeError} for an empty host
 * @throws {RangeError} for a port outside 1–65535
 */
export function hostKey(host: string, port: number): string {
  checkPort(port);
  const name = normaliseHost(host);
  return isIP(name) === 6 ? `[${name}]:${port}` : `${name}:${port}`;
}

const knownHostSchema = z.object({
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
  certPem: z.string().includes("-----BEGIN CERTIFICATE-----"),
  addedAt: z.string(),
});
const fileSchema = z.object({
  version: z.literal(1),
  hosts: z.record(z.string(), knownHostSchema),
});
type KnownHostsFile = z.infer<typeof fileSchema>;

/**
 * The pinned server certificates, persisted as `<configDir>/known_hosts.json`. Every call
 * re-reads the file, so several `cloud` processes see each other's pins; writes go to a
 * temporary file that is renamed into place.
 *
 * @example
 * ```ts
 * const store = new TrustStore(defaultConfigDir());
 * const known = await store.get("192.0.2.7", 7070);
 * ```
 */
export class TrustStore {
  /** The JSON file holding the pins. */
  readonly path: string;
  readonly #dir: string;
  #queue: Promise<unknown> = Promise.resolve();

  /** Opens the store in `configDir` (default {@linkcode defaultConfigDir}). */
  constructor(configDir: string = defaultConfigDir()) {
    this.#dir = configDir;
    this.path = join(configDir, "known_hosts.json");
  }

  /** The certificate pinned for `host:port`, or undefined. */
  async get(host: string, port: number): Promise<KnownHost | undefined> {
    const key = hostKey(host, port);
    const hosts = (await this.#read()).hosts;
    return Object.hasOwn(hosts, key) ? hosts[key] : undefined;
  }

  /**
   * Pins `certPem` (whose SHA-256 is `fingerprint`) for `host:port`, replacing any
   * previous pin.
   *
   * @throws {TypeError} when `fingerprint` is not a SHA-256 fingerprint
   */
  async pin(host: string, port: number, fingerprint: string, certPem: string): Promise<KnownHost> {
    const key = hostKey(host, port);
    const entry: KnownHost = {
      fingerprint: parseFingerprint(fingerprint),
      certPem,
      addedAt: new Date().toISOString(),
    };
    return await this.#update((file) => {
      file.hosts[key] = entry;
      return entry;
    });
  }

  /** Forgets the pin of `host:port`; returns whether there was one. */
  async remove(host: string, port: number): Promise<boolean> {
    const key = hostKey(host, port);
    return await this.#update((file) => {
      const had = Object.hasOwn(file.hosts, key);
      delete file.hosts[key];
      return had;
    });
  }

  /** Every pin, sorted by key. */
  async list(): Promise<KnownHostEntry[]> {
    const hosts = (await this.#read()).hosts;
    return Object.keys(hosts).sort().map((key) => {
      const split = key.lastIndexOf(":");
      return {
        key,
        host: key.slice(0, split).replace(/^\[(.*)\]$/, "$1"),
        port: Number(key.slice(split + 1)),
        ...hosts[key]!,
      };
    });
  }

  async #read(): Promise<KnownHostsFile> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return { version: 1, hosts: {} };
      throw e;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new SyntaxError(`Known hosts file "${this.path}" is not valid JSON`, { cause: e });
    }
    const parsed = fileSchema.safeParse(json);
    if (!parsed.success) {
      throw new SyntaxError(
        `Known hosts file "${this.path}" is malformed: ${parsed.error.issues[0]?.message}`,
      );
    }
    // A null-prototype copy, so that keys such as "__proto__" stay plain data.
    return { version: 1, hosts: Object.assign(Object.create(null), parsed.data.hosts) };
  }

  /** Read-modify-write, serialised within this process, written atomically. */
  #update<T>(change: (file: KnownHostsFile) => T): Promise<T> {
    const run = this.#queue.then(async () => {
      const file = await this.#read();
      const result = change(file);
      await this.#write(file);
      return result;
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  async #write(file: KnownHostsFile): Promise<void> {
    await Deno.mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.#dir, `.known_hosts.${crypto.randomUUID()}.tmp`);
    const bytes = new TextEncoder().encode(JSON.stringify(file, null, 2) + "\n");
    try {
      using handle = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
      for (let done = 0; done < bytes.length;) done += await handle.write(bytes.subarray(done));
      await handle.sync();
      await Deno.chmod(tmp, 0o600);
      await Deno.rename(tmp, this.path);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw e;
    }
  }
}

/** What {@linkcode probeCertificate} saw. */
export interface ProbeResult {
  /** SHA-256 of the server's leaf certificate DER, 64 lower-case hex digits. */
  fingerprint: string;
  /** The leaf certificate as PEM. */
  certPem: string;
  /** True when the leaf certificate is self-signed. */
  selfSigned: boolean;
  /** The ALPN protocol the server chose, or null when it chose none. */
  alpnProtocol: string | null;
  /** The TLS version negotiated, e.g. `"TLSv1.3"`. */
  tlsVersion: string | null;
}

/** Options of {@linkcode probeCertificate}. */
export interface ProbeOptions {
  /** Give up after this long (connect and handshake together). Default 5000 ms. */
  timeoutMs?: number;
}

/**
 * Fetches a server's certificate without trusting it: a TLS handshake offering ALPN
 * `cloud/1` that accepts any certificate, sends no application data and closes at once.
 * The result is only something to show and compare; trust comes from the pin.
 *
 * @throws {CloudError} `E_UNREACHABLE` ("Cannot reach HOST:PORT: reason") when the
 * connection is refused, times out or the handshake fails
 */
export async function probeCertificate(
  host: string,
  port: number,
  options: ProbeOptions = {},
): Promise<ProbeResult> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const display = hostKey(host, port);
  const name = normaliseHost(host);
  const connectOptions: tls.ConnectionOptions = {
    host: name,
    port,
    rejectUnauthorized: false,
    ALPNProtocols: [ALPN_PROTOCOL],
  };
  if (!isIP(name)) connectOptions.servername = name;

  type Seen = { der: Uint8Array<ArrayBuffer>; alpn: string | null; version: string | null };
  type Outcome = { ok: true; seen: Seen } | { ok: false; why: string };
  const seen = await new Promise<Seen>((resolve, reject) => {
    let outcome: Outcome | undefined;
    const socket = tls.connect(connectOptions);
    const finish = (result: Outcome) => {
      if (outcome !== undefined) return;
      outcome = result;
      clearTimeout(timer);
      socket.destroy();
    };
    const timer = setTimeout(
      () => finish({ ok: false, why: `timed out after ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.once("secureConnect", () => {
      const peer = socket.getPeerCertificate(false);
      if (!peer?.raw) {
        finish({ ok: false, why: "the server sent no certificate" });
        return;
      }
      const alpn = socket.alpnProtocol;
      finish({
        ok: true,
        seen: {
          der: new Uint8Array(peer.raw),
          alpn: typeof alpn === "string" ? alpn : null,
          version: socket.getProtocol() ?? null,
        },
      });
    });
    socket.on("error", (e: Error & { code?: string }) => finish({ ok: false, why: reasonOf(e) }));
    // Settle only once the socket is fully closed, so no resource outlives the probe.
    socket.once("close", () => {
      finish({ ok: false, why: "the connection closed during the TLS handshake" });
      const result = outcome!;
      if (result.ok) resolve(result.seen);
      else reject(new CloudError("E_UNREACHABLE", `Cannot reach ${display}: ${result.why}`));
    });
  });

  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(seen.der);
  } catch (e) {
    throw new CloudError(
      "E_UNREACHABLE",
      `Cannot reach ${display}: the server's certificate cannot be parsed (${
        e instanceof Error ? e.message : String(e)
      })`,
    );
  }
  return {
    fingerprint: await fingerprintOf(seen.der),
    certPem: cert.toString("pem") + "\n",
    selfSigned: await isSelfSigned(cert),
    alpnProtocol: seen.alpn,
    tlsVersion: seen.version,
  };
}

/** A short human reason for a socket error. */
export function reasonOf(e: Error & { code?: string }): string {
  switch (e.code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ECONNRESET":
      return "connection reset by the server";
    case "ETIMEDOUT":
      return "connection timed out";
    case "EHOSTUNREACH":
      return "no route to host";
    case "ENETUNREACH":
      return "network unreachable";
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
      return "unknown host";
  }
  if (e instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (e instanceof Deno.errors.ConnectionReset) return "connection reset by the server";
  if (/no.?application.?protocol/i.test(e.message)) {
    return "not a cloud server (it does not speak ALPN cloud/1)";
  }
  return e.message;
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`Invalid port "${port}"`);
  }
}

/**
 * Connecting to a server with trust on first use (SPEC section 4): probe the certificate
 * untrusted, decide against the pin or the caller's choice, then connect for real with the
 * pinned certificate as the only trust anchor — all before a byte of the protocol is sent.
 *
 * @module
 */

import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { CloudError } from "../protocol/errors.ts";
import {
  ALPN_PROTOCOL,
  fingerprintOf,
  formatFingerprint,
  parseFingerprint,
  PINNED_SERVER_NAME,
} from "../server/tls.ts";
import {
  hostKey,
  type KnownHost,
  normaliseHost,
  probeCertificate,
  type ProbeResult,
  reasonOf,
  type TrustStore,
} from "./trust.ts";

/** What the caller is shown when a server is met for the first time. */
export interface TrustPrompt {
  /** The host as given. */
  host: string;
  /** The TCP port. */
  port: number;
  /** SHA-256 of the server's certificate, 64 lower-case hex digits. */
  fingerprint: string;
  /** True when the certificate is self-signed (the usual case for `cloud serve`). */
  selfSigned: boolean;
  /** The certificate as PEM, for callers that want to show more of it. */
  certPem: string;
}

/** How to decide about a server that has no pin yet. */
export interface TrustDecision {
  /**
   * The fingerprint the user expects (`--fingerprint`), as `sha256:HEX`, `HEX` or
   * colon-separated hex. A server with any other certificate is refused, pinned or not.
   */
  fingerprint?: string;
  /** Pin whatever certificate the server shows on first contact (`--trust`). */
  trustOnFirstUse?: boolean;
  /** Ask the user (an interactive prompt); resolving true pins the certificate. */
  ask?: (info: TrustPrompt) => Promise<boolean>;
}

/** Options of {@linkcode connectTrusted}. */
export interface ConnectTrustedOptions {
  /** Host name or address (IPv6 with or without brackets). */
  host: string;
  /** TCP port. */
  port: number;
  /** How to decide on first contact. */
  trust: TrustDecision;
  /** Where pins are kept. */
  store: TrustStore;
  /**
   * Limit for reaching the server, applied to the probe and again to the real
   * connection (time spent in `ask` does not count). Default 5000 ms.
   */
  timeoutMs?: number;
}

/** A TLS connection to a trusted `cloud` server, handshake done, nothing sent yet. */
export interface TrustedConnection {
  /** The connection; ALPN `cloud/1` was negotiated. */
  conn: Deno.TlsConn;
  /** SHA-256 of the server's certificate, 64 lower-case hex digits. */
  fingerprint: string;
  /** True when the certificate was pinned by this call (first contact). */
  pinnedNow: boolean;
  /** True when the certificate is self-signed. */
  selfSigned: boolean;
}

/**
 * Connects to a `cloud` server, trusting it as the pin or `trust` says.
 *
 * 1. The certificate is fetched untrusted ({@linkcode probeCertificate}).
 * 2. A pin for `host:port` that differs, or a `trust.fingerprint` that differs, is refused
 *    with `E_TRUST` before anything is sent. Without a pin the certificate is accepted when
 *    it matches `trust.fingerprint`, or `trust.trustOnFirstUse` is set, or `trust.ask`
 *    answers yes; otherwise `E_TRUST`.
 * 3. The real connection trusts only the pinned certificate: `Deno.startTls` with it as
 *    `caCerts` and {@linkcode PINNED_SERVER_NAME} as the name to check. Deno adds `caCerts`
 *    to the public roots, but no public CA issues certificates for a `.invalid` name, so
 *    only the pinned certificate (and its key) can pass. A self-signed certificate without
 *    that name is checked against `host` instead.
 * 4. A CA-issued certificate (not self-signed) is verified with the default roots against
 *    `host`, and the pin is enforced by the probe's fingerprint check only: Deno cannot
 *    show the certificate of the real connection, so another certificate for the same name
 *    from a public CA would be accepted there.
 * 5. The negotiated ALPN must be `cloud/1`.
 * The certificate is pinned only after the real handshake with it succeeded.
 *
 * @throws {CloudError} `E_TRUST` when the certificate changed, differs from
 * `trust.fingerprint` or is not trusted; `E_UNREACHABLE` when the server cannot be reached
 * within the timeout or is not a `cloud` server; `E_INVALID` for a malformed
 * `trust.fingerprint`
 *
 * @example
 * ```ts
 * const store = new TrustStore();
 * const { conn } = await connectTrusted({
 *   host: "192.0.2.7",
 *   port: 7070,
 *   trust: { fingerprint: "sha256:…" },
 *   store,
 * });
 * ```
 */
export async function connectTrusted(options: ConnectTrustedOptions): Promise<TrustedConnection> {
  const { host, port, trust, store } = options;
  const timeoutMs = options.timeoutMs ?? 5000;
  const display = hostKey(host, port);
  let expected: string | undefined;
  if (trust.fingerprint !== undefined) {
    try {
      expected = parseFingerprint(trust.fingerprint);
    } catch {
      throw new CloudError(
        "E_INVALID",
        `Invalid fingerprint "${trust.fingerprint}"; expected sha256: and 64 hex digits`,
      );
    }
  }

  const probe = await probeCertificate(host, port, { timeoutMs });
  if (probe.alpnProtocol !== ALPN_PROTOCOL) {
    throw notCloud(display, probe.alpnProtocol);
  }
  if (probe.tlsVersion !== "TLSv1.3") {
    throw new CloudError(
      "E_UNREACHABLE",
      `Cannot reach ${display}: the server negotiated "${probe.tlsVersion}", not TLS 1.3`,
    );
  }

  const pinned = await store.get(host, port);
  if (pinned !== undefined && pinned.fingerprint !== probe.fingerprint) {
    throw new CloudError("E_TRUST", changedMessage(display, pinned, probe.fingerprint, store));
  }
  if (expected !== undefined && expected !== probe.fingerprint) {
    throw new CloudError(
      "E_TRUST",
      `The certificate of ${display} does not match the expected fingerprint\n` +
        `  expected: ${formatFingerprint(expected)}\n` +
        `  received: ${formatFingerprint(probe.fingerprint)}\n` +
        `Nothing was sent to the server`,
    );
  }
  if (pinned === undefined && !(await accepts(trust, expected, host, port, probe))) {
    throw new CloudError(
      "E_TRUST",
      `The server ${display} is not trusted (certificate ${
        formatFingerprint(probe.fingerprint)
      }); check the fingerprint with its administrator, then connect with --fingerprint ` +
        `${formatFingerprint(probe.fingerprint)} or --trust`,
    );
  }

  let anchorPem = probe.certPem;
  if (pinned !== undefined) {
    // The pin's PEM is what the connection trusts: make sure it is the pinned certificate.
    const der = pemToDer(pinned.certPem);
    if (der === undefined || (await fingerprintOf(der)) !== pinned.fingerprint) {
      throw new CloudError(
        "E_TRUST",
        `The pinned certificate of ${display} in "${store.path}" does not match its ` +
          `fingerprint; remove the entry "${display}" and connect again`,
      );
    }
    anchorPem = pinned.certPem;
  }

  const conn = await openTls(host, port, display, anchorPem, probe.selfSigned, timeoutMs);
  let pinnedNow = false;
  if (pinned === undefined) {
    try {
      await store.pin(host, port, probe.fingerprint, probe.certPem);
    } catch (e) {
      conn.close();
      throw e;
    }
    pinnedNow = true;
  }
  return { conn, fingerprint: probe.fingerprint, pinnedNow, selfSigned: probe.selfSigned };
}

async function accepts(
  trust: TrustDecision,
  expected: string | undefined,
  host: string,
  port: number,
  probe: ProbeResult,
): Promise<boolean> {
  if (expected !== undefined) return expected === probe.fingerprint;
  if (trust.trustOnFirstUse) return true;
  if (trust.ask === undefined) return false;
  return await trust.ask({
    host,
    port,
    fingerprint: probe.fingerprint,
    selfSigned: probe.selfSigned,
    certPem: probe.certPem,
  });
}

function changedMessage(
  display: string,
  pinned: KnownHost,
  received: string,
  store: TrustStore,
): string {
  const bar = "@".repeat(59);
  return [
    bar,
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
    bar,
    `The certificate of ${display} is not the one pinned on ${pinned.addedAt}.`,
    "Someone could be intercepting the connection (a man-in-the-middle attack),",
    "or the server's certificate was replaced.",
    `  pinned:   ${formatFingerprint(pinned.fingerprint)}`,
    `  received: ${formatFingerprint(received)}`,
    "Nothing was sent to the server. If the change is expected, remove the entry",
    `"${display}" from "${store.path}" and connect again`,
  ].join("\n");
}

function notCloud(display: string, alpn: string | null): CloudError {
  return new CloudError(
    "E_UNREACHABLE",
    `Cannot reach ${display}: not a cloud server (ALPN ${
      alpn === null ? "none" : `"${alpn}"`
    }, expected "${ALPN_PROTOCOL}")`,
  );
}

/** The real connection: TCP, then TLS trusting `anchorPem`, within `timeoutMs`. */
async function openTls(
  host: string,
  port: number,
  display: string,
  anchorPem: string,
  selfSigned: boolean,
  timeoutMs: number,
): Promise<Deno.TlsConn> {
  const name = normaliseHost(host);
  const tlsOptions: Deno.StartTlsOptions = { alpnProtocols: [ALPN_PROTOCOL], hostname: name };
  if (selfSigned) {
    tlsOptions.caCerts = [anchorPem];
    if (hasDnsName(anchorPem, PINNED_SERVER_NAME)) tlsOptions.hostname = PINNED_SERVER_NAME;
  }

  const controller = new AbortController();
  const timedOut = new Promise<never>((_, reject) => {
    controller.signal.addEventListener("abort", () => {
      reject(
        new CloudError("E_UNREACHABLE", `Cannot reach ${display}: timed out after ${timeoutMs} ms`),
      );
    }, { once: true });
  });
  timedOut.catch(() => {});
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let conn: Deno.TlsConn | undefined;
  try {
    const tcp = await Promise.race([
      Deno.connect({ hostname: name, port, signal: controller.signal }),
      timedOut,
    ]);
    conn = await Deno.startTls(tcp, tlsOptions);
    const handshake = conn.handshake();
    handshake.catch(() => {});
    const info = await Promise.race([handshake, timedOut]);
    if (info.alpnProtocol !== ALPN_PROTOCOL) throw notCloud(display, info.alpnProtocol);
    return conn;
  } catch (e) {
    try {
      conn?.close();
    } catch {
      // already closed
    }
    if (controller.signal.aborted) throw await timedOut.catch((t) => t);
    if (e instanceof CloudError) throw e;
    if (e instanceof Error && /certificate|UnknownIssuer|NotValidForName/i.test(e.message)) {
      throw new CloudError(
        "E_TRUST",
        `The certificate of ${display} was refused: ${e.message}`,
      );
    }
    throw new CloudError(
      "E_UNREACHABLE",
      `Cannot reach ${display}: ${e instanceof Error ? reasonOf(e) : String(e)}`,
    );
  } finally {
    clearTimeout(timer);
  }
}

function pemToDer(pem: string): Uint8Array<ArrayBuffer> | undefined {
  try {
    return new Uint8Array(x509.PemConverter.decodeFirst(pem));
  } catch {
    return undefined;
  }
}

function hasDnsName(pem: string, name: string): boolean {
  try {
    const san = new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension);
    return san?.names.items.some((n) => n.type === "dns" && n.value.toLowerCase() === name) ??
      false;
  } catch {
    return false;
  }
}

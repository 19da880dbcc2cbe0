/**
 * The menu's connection to one server: who is logged in, the remote folder being browsed,
 * and a connection that is reopened (and logged in again) when the server closed it for
 * idleness or when a transfer was cancelled. The password is kept in memory for that
 * silent re-login only; it is never printed.
 *
 * @module
 */

import { CloudError } from "../protocol/errors.ts";
import type { CloudClient } from "./client.ts";

/** How long a cancelled transfer may take to clean up before the menu comes back. */
const CANCEL_GRACE_MS = 3000;

/** Opens a new, handshaken connection to the server. */
export type Connector = () => Promise<CloudClient>;

/** Where Ctrl-C comes from during a transfer. */
export interface InterruptSource {
  /** Calls `handler` on each Ctrl-C until the returned function is called. */
  onInterrupt(handler: () => void): () => void;
}

/** Ctrl-C as SIGINT, listened to only while a transfer runs. */
export const sigintSource: InterruptSource = {
  onInterrupt(handler) {
    Deno.addSignalListener("SIGINT", handler);
    return () => Deno.removeSignalListener("SIGINT", handler);
  },
};

/** Options of {@link MenuSession}. */
export interface MenuSessionOptions {
  /** Reconnect before a request after this much silence when logged out (default 10 s). */
  anonymousIdleMs?: number;
  /** Reconnect before a request after this much silence when logged in (default 9 min). */
  authenticatedIdleMs?: number;
  /** The clock (for tests). */
  now?: () => number;
}

/** The outcome of {@link MenuSession.transfer}. */
export type TransferOutcome<T> = { cancelled: false; value: T } | { cancelled: true };

/** True for errors that mean the connection is gone (the request was not answered). */
export function isConnectionLost(error: unknown): boolean {
  if (error instanceof CloudError) {
    return error.code === "E_IDLE" || error.code === "E_SHUTDOWN" || error.code === "E_UNREACHABLE";
  }
  return error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.BadResource;
}

/**
 * One server's session as the menu sees it.
 *
 * @example
 * ```ts
 * const session = await MenuSession.open("127.0.0.1:7070", () => openClient(options, io));
 * await session.login("ada@example.com", password);
 * const { entries } = await session.use((c) => c.call({ t: "ls", path: session.remoteDir }));
 * ```
 */
export class MenuSession {
  /** The address shown in the header. */
  readonly address: string;
  /** The server's name from its hello. */
  serverName: string;
  /** The logged-in email, or null. */
  email: string | null = null;
  /** The logged-in user's name, or null. */
  name: string | null = null;
  /** The remote folder being browsed ("" is the root). */
  remoteDir = "";
  /** The email of the last login attempt, offered again (kept after logout). */
  lastEmail: string | null = null;

  #connect: Connector;
  #client: CloudClient | null;
  #password: string | null = null;
  #lastUse: number;
  #now: () => number;
  #anonymousIdleMs: number;
  #authenticatedIdleMs: number;

  private constructor(
    address: string,
    connect: Connector,
    client: CloudClient,
    options: MenuSessionOptions,
  ) {
    this.address = address;
    this.#connect = connect;
    this.#client = client;
    this.serverName = client.server.name;
    this.#now = options.now ?? (() => performance.now());
    this.#lastUse = this.#now();
    this.#anonymousIdleMs = options.anonymousIdleMs ?? 10_000;
    this.#authenticatedIdleMs = options.authenticatedIdleMs ?? 9 * 60_000;
  }

  /** Connects once (this is where a first-contact trust question is asked). */
  static async open(
    address: string,
    connect: Connector,
    options: MenuSessionOptions = {},
  ): Promise<MenuSession> {
    return new MenuSession(address, connect, await connect(), options);
  }

  /** True when someone is logged in. */
  get loggedIn(): boolean {
    return this.email !== null;
  }

  /** The remote folder as shown: "/" or "/docs/2024". */
  get folderLabel(): string {
    return `/${this.remoteDir}`;
  }

  /** Replaces the connection with a new one and logs in again if someone was. */
  async reconnect(): Promise<void> {
    this.#client?.abort();
    this.#client = null;
    const client = await this.#connect();
    this.#client = client;
    this.serverName = client.server.name;
    this.#lastUse = this.#now();
    if (this.email !== null && this.#password !== null) {
      try {
        const me = await client.login(this.email, this.#password);
        this.name = me.name;
      } catch (error) {
        this.#forget();
        throw error;
      }
    }
  }

  async #ensure(): Promise<CloudClient> {
    const idle = this.#now() - this.#lastUse;
    const limit = this.loggedIn ? this.#authenticatedIdleMs : this.#anonymousIdleMs;
    if (this.#client === null || idle > limit) await this.reconnect();
    return this.#client!;
  }

  /**
   * Runs requests on the connection. When the connection turns out to be gone (closed
   * for idleness, server restarted), reconnects, logs in again and runs `fn` once more.
   */
  async use<T>(fn: (client: CloudClient) => Promise<T>): Promise<T> {
    let client = await this.#ensure();
    try {
      const value = await fn(client);
      this.#lastUse = this.#now();
      return value;
    } catch (error) {
      if (!isConnectionLost(error)) {
        this.#lastUse = this.#now();
        throw error;
      }
      await this.reconnect();
      client = this.#client!;
      const value = await fn(client);
      this.#lastUse = this.#now();
      return value;
    }
  }

  /**
   * Runs a transfer that Ctrl-C may cancel: the connection is aborted (the protocol has
   * no way to stop a body midway), `fn` sees its signal aborted and must leave nothing
   * partial behind, then a new connection is opened and logged in again.
   */
  async transfer<T>(
    fn: (client: CloudClient, signal: AbortSignal) => Promise<T>,
    interrupts: InterruptSource,
  ): Promise<TransferOutcome<T>> {
    const client = await this.#ensure();
    const controller = new AbortController();
    const cancelled = Promise.withResolvers<void>();
    const dispose = interrupts.onInterrupt(() => {
      if (controller.signal.aborted) return;
      controller.abort(new DOMException("Cancelled with Ctrl-C", "AbortError"));
      client.abort();
      cancelled.resolve();
    });
    const running = fn(client, controller.signal);
    running.catch(() => {});
    try {
      // Work that does not watch the signal (hashing a large file before sending) must
      // not hold the user up: after Ctrl-C, wait for it only briefly.
      const value = await Promise.race([
        running,
        cancelled.promise.then(() =>
          Promise.race([
            running,
            new Promise<never>((_, reject) => {
              const timer = setTimeout(() => reject(controller.signal.reason), CANCEL_GRACE_MS);
              running.finally(() => clearTimeout(timer)).catch(() => {});
            }),
          ])
        ),
      ]);
      this.#lastUse = this.#now();
      return { cancelled: false, value };
    } catch (error) {
      if (controller.signal.aborted) {
        this.#client = null;
        await this.reconnect();
        return { cancelled: true };
      }
      if (isConnectionLost(error)) {
        client.abort();
        this.#client = null;
      }
      throw error;
    } finally {
      dispose();
    }
  }

  /** Logs in (logging out whoever was logged in first) and remembers the credentials. */
  async login(email: string, password: string): Promise<{ email: string; name: string }> {
    if (this.loggedIn) await this.logout();
    this.lastEmail = email;
    const me = await this.use((c) => c.login(email, password));
    this.email = me.email;
    this.name = me.name;
    this.#password = password;
    this.remoteDir = "";
    return me;
  }

  /** Logs out and forgets the credentials. */
  async logout(): Promise<void> {
    try {
      if (this.#client !== null) await this.#client.logout();
    } catch (error) {
      // Whatever went wrong, this connection must not stay logged in: drop it.
      this.#client?.abort();
      this.#client = null;
      if (!isConnectionLost(error) && !(error instanceof CloudError)) throw error;
    } finally {
      this.#forget();
    }
  }

  /** Changes the password and remembers the new one for re-login. */
  async passwd(current: string, next: string): Promise<void> {
    await this.use((c) => c.passwd(current, next));
    this.#password = next;
  }

  #forget(): void {
    this.email = null;
    this.name = null;
    this.#password = null;
    this.remoteDir = "";
  }

  /** Says goodbye and closes the connection. */
  async close(): Promise<void> {
    const client = this.#client;
    this.#client = null;
    this.#forget();
    await client?.close();
  }
}

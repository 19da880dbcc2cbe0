/**
 * The client library: typed calls over one connection to a `cloud` server. Works on any
 * `{ readable, writable }` duplex; the CLI and the interactive menu both use it.
 *
 * @module
 */

import { CloudError, isErrorCode } from "../protocol/errors.ts";
import { FrameReader, FrameWriter, PROTOCOL_VERSION } from "../protocol/frame.ts";
import {
  type Entry,
  type OkPayloads,
  parseResponse,
  type Request,
  type Response,
  type ResponseOf,
} from "../protocol/messages.ts";

/** A bidirectional byte stream, closable. */
export interface ClientDuplex {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
  close?(): void;
}

/** What the server said about itself in its hello. */
export interface ServerInfo {
  name: string;
  version: number;
}

/** Turns an `error` response into a CloudError with the same code. */
export function errorFromResponse(response: ResponseOf<"error">): CloudError {
  const code = isErrorCode(response.code) ? response.code : "E_INTERNAL";
  const details: { retryAt?: string; offset?: number } = {};
  if (response.retryAt !== undefined) details.retryAt = response.retryAt;
  if (response.offset !== undefined) details.offset = response.offset;
  return new CloudError(code, response.message, details);
}

/**
 * A connected, handshaken client. Requests run one at a time, in order.
 *
 * @example
 * ```ts
 * const client = await CloudClient.open(conn);
 * await client.login("ada@example.com", "correct horse battery staple");
 * console.log(await client.whoami());
 * await client.close();
 * ```
 */
export class CloudClient {
  /** Low-level framing, for file transfers. */
  readonly reader: FrameReader;
  readonly writer: FrameWriter;
  readonly server: ServerInfo;
  #duplex: ClientDuplex;
  #closed = false;

  private constructor(
    duplex: ClientDuplex,
    reader: FrameReader,
    writer: FrameWriter,
    server: ServerInfo,
  ) {
    this.#duplex = duplex;
    this.reader = reader;
    this.writer = writer;
    this.server = server;
  }

  /** Sends the preamble, reads the server's and its hello. */
  static async open(duplex: ClientDuplex): Promise<CloudClient> {
    const reader = new FrameReader(duplex.readable);
    const writer = new FrameWriter(duplex.writable);
    await writer.writePreamble(PROTOCOL_VERSION);
    const version = await reader.readPreamble();
    if (version === null) {
      throw new CloudError("E_UNREACHABLE", "Server closed the connection during hello");
    }
    const hello = await CloudClient.#readResponse(reader);
    if (hello.t === "error") throw errorFromResponse(hello);
    if (hello.t !== "hello") throw new CloudError("E_BAD_MESSAGE", "Server did not say hello");
    return new CloudClient(duplex, reader, writer, { name: hello.server, version: hello.version });
  }

  static async #readResponse(reader: FrameReader): Promise<Response> {
    const frame = await reader.readFrame();
    if (frame === null) {
      throw new CloudError("E_UNREACHABLE", "Server closed the connection");
    }
    return parseResponse(frame);
  }

  /** Reads the next response; an `error` response is thrown as CloudError. */
  async readResponse(): Promise<Response> {
    const response = await CloudClient.#readResponse(this.reader);
    if (response.t === "error") throw errorFromResponse(response);
    return response;
  }

  /** Sends a request and returns the `ok` payload; errors are thrown as CloudError. */
  async call<T extends keyof OkPayloads>(request: Request & { t: T }): Promise<OkPayloads[T]> {
    await this.writer.writeFrame(request);
    return this.expectOk<T>();
  }

  /** Reads a response that must be `ok`. */
  async expectOk<T extends keyof OkPayloads>(): Promise<OkPayloads[T]> {
    const response = await this.readResponse();
    if (response.t !== "ok") {
      throw new CloudError("E_BAD_MESSAGE", `Expected ok, server sent "${response.t}"`);
    }
    const { t: _t, ...payload } = response;
    return payload as unknown as OkPayloads[T];
  }

  /** Creates an account (does not log in). */
  register(
    account: { email: string; password: string; name: string; phone: string },
  ): Promise<OkPayloads["register"]> {
    return this.call({ t: "register", ...account });
  }

  /** Logs in on this connection. */
  login(email: string, password: string): Promise<OkPayloads["login"]> {
    return this.call({ t: "login", email, password });
  }

  /** The logged-in account. */
  whoami(): Promise<OkPayloads["whoami"]> {
    return this.call({ t: "whoami" });
  }

  /** Changes the password (the current one is checked again). */
  async passwd(password: string, newPassword: string): Promise<void> {
    await this.call({ t: "passwd", password, newPassword });
  }

  /** Logs out; the connection stays open. */
  async logout(): Promise<void> {
    await this.call({ t: "logout" });
  }

  /** Lists a whole folder, page by page, sorted by name. */
  async list(path: string): Promise<Entry[]> {
    const entries: Entry[] = [];
    let after: string | undefined;
    for (let page = 0; page < 1_000_000; page++) {
      const listing: OkPayloads["ls"] = await this.call({
        t: "ls",
        path,
        ...(after !== undefined ? { after } : {}),
      });
      entries.push(...listing.entries);
      if (listing.next === null) break;
      after = listing.next;
    }
    return entries;
  }

  /** Says goodbye (best effort) and closes the connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.call({ t: "bye" });
    } catch {
      // the server may already be gone
    }
    await this.writer.close();
    await this.reader.cancel();
    try {
      this.#duplex.close?.();
    } catch {
      // already closed
    }
  }

  /** Closes without saying goodbye (after an error mid-transfer). */
  abort(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.reader.cancel();
    try {
      this.#duplex.close?.();
    } catch {
      // already closed
    }
  }
}

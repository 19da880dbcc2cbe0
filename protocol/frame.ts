/**
 * Framing of the `cloud` wire protocol: the Hello preamble, length-prefixed JSON control
 * frames and raw byte bodies of a declared length. Pure: works on any Web Streams pair.
 *
 * See PROTOCOL.md for the byte layout.
 *
 * @module
 */

import { CloudError } from "./errors.ts";

/** The magic word that opens every connection, in both directions. */
export const MAGIC: Uint8Array = new TextEncoder().encode("CLOUD\0");
/** The protocol version this code speaks. */
export const PROTOCOL_VERSION = 1;
/** Length of the preamble: magic plus a 16-bit big-endian version. */
export const PREAMBLE_LENGTH: number = MAGIC.length + 2;
/** Hard cap on a control frame's payload, checked before allocating. */
export const MAX_FRAME_BYTES = 64 * 1024;
/** Bytes of the length prefix of a control frame. */
export const FRAME_HEADER_BYTES = 4;
/** How far a body is read ahead of its consumer, so network and disk overlap. */
export const BODY_READ_AHEAD_BYTES = 1024 * 1024;

/**
 * A transform that merges small chunks (TLS delivers 16 KiB records) into chunks of at
 * least `size` bytes, so a file sink makes a few large writes instead of many small ones.
 */
export function coalesce(size: number = 1024 * 1024): TransformStream<Uint8Array, Uint8Array> {
  let parts: Uint8Array[] = [];
  let held = 0;
  const flush = (controller: TransformStreamDefaultController<Uint8Array>) => {
    if (held === 0) return;
    if (parts.length === 1) {
      controller.enqueue(parts[0]!);
    } else {
      const merged = new Uint8Array(held);
      let at = 0;
      for (const part of parts) {
        merged.set(part, at);
        at += part.length;
      }
      controller.enqueue(merged);
    }
    parts = [];
    held = 0;
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      parts.push(chunk);
      held += chunk.length;
      if (held >= size) flush(controller);
    },
    flush,
  });
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes the preamble for `version`. */
export function encodePreamble(version: number = PROTOCOL_VERSION): Uint8Array {
  const out = new Uint8Array(PREAMBLE_LENGTH);
  out.set(MAGIC, 0);
  new DataView(out.buffer).setUint16(MAGIC.length, version);
  return out;
}

/**
 * Decodes a preamble and returns the version it announces.
 * Throws E_BAD_MAGIC for anything that is not a `cloud` preamble.
 */
export function decodePreamble(bytes: Uint8Array): number {
  if (bytes.length !== PREAMBLE_LENGTH || !MAGIC.every((b, i) => bytes[i] === b)) {
    throw new CloudError("E_BAD_MAGIC", "Not a cloud protocol peer (bad magic)");
  }
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint16(MAGIC.length);
}

/** Encodes one control frame: a 32-bit big-endian length, then the JSON payload. */
export function encodeFrame(message: unknown, maxBytes: number = MAX_FRAME_BYTES): Uint8Array {
  const payload = encoder.encode(JSON.stringify(message));
  if (payload.length > maxBytes) {
    throw new CloudError(
      "E_FRAME_TOO_LARGE",
      `Frame of ${payload.length} bytes exceeds the cap of ${maxBytes}`,
    );
  }
  const out = new Uint8Array(FRAME_HEADER_BYTES + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length);
  out.set(payload, FRAME_HEADER_BYTES);
  return out;
}

/** Parses a frame payload as JSON; E_BAD_JSON when it is not UTF-8 JSON. */
export function decodeFramePayload(payload: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(payload));
  } catch {
    throw new CloudError("E_BAD_JSON", "Frame payload is not valid UTF-8 JSON");
  }
}

/** Options of {@link FrameReader}. */
export interface FrameReaderOptions {
  /** Cap on a control frame's payload in bytes. Default {@link MAX_FRAME_BYTES}. */
  maxFrameBytes?: number;
  /** Called whenever bytes move (for idle and stall watchdogs). */
  onActivity?: () => void;
}

/**
 * Reads preambles, control frames and exact byte counts from one readable stream, for the
 * life of a connection. A read may return any number of bytes; leftovers are kept for the
 * next call, so frames split or merged at any point decode the same.
 */
export class FrameReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffered: Uint8Array = new Uint8Array(0);
  #maxFrameBytes: number;
  #eof = false;
  #bodyRemaining = 0;

  #onActivity: () => void;

  constructor(readable: ReadableStream<Uint8Array>, options: FrameReaderOptions = {}) {
    this.#reader = readable.getReader();
    this.#maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.#onActivity = options.onActivity ?? (() => {});
  }

  /** Bytes received but not consumed yet. */
  get bufferedBytes(): number {
    return this.#buffered.length;
  }

  /** Pulls one chunk into the buffer; false at end of stream. */
  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const { value, done } = await this.#reader.read();
    if (done) {
      this.#eof = true;
      return false;
    }
    this.#onActivity();
    if (value.length === 0) return true;
    if (this.#buffered.length === 0) {
      this.#buffered = value;
    } else {
      const merged = new Uint8Array(this.#buffered.length + value.length);
      merged.set(this.#buffered, 0);
      merged.set(value, this.#buffered.length);
      this.#buffered = merged;
    }
    return true;
  }

  #take(n: number): Uint8Array {
    const out = this.#buffered.subarray(0, n);
    this.#buffered = this.#buffered.subarray(n);
    return out;
  }

  /**
   * Reads exactly `n` bytes. Returns null on a clean end of stream before the first byte;
   * throws E_BAD_FRAME when the stream ends part-way.
   */
  async readExact(n: number): Promise<Uint8Array | null> {
    while (this.#buffered.length < n) {
      if (!(await this.#fill())) {
        if (this.#buffered.length === 0) return null;
        throw new CloudError("E_BAD_FRAME", "Connection ended in the middle of a frame");
      }
    }
    return this.#take(n);
  }

  /** Reads the peer's preamble and returns its version; null on EOF. */
  async readPreamble(): Promise<number | null> {
    const bytes = await this.readExact(PREAMBLE_LENGTH);
    return bytes === null ? null : decodePreamble(bytes);
  }

  /**
   * Reads one control frame and returns its parsed JSON (not yet schema-checked).
   * Returns null on a clean end of stream between frames.
   */
  async readFrame(): Promise<unknown | null> {
    const header = await this.readExact(FRAME_HEADER_BYTES);
    if (header === null) return null;
    const length = new DataView(header.buffer, header.byteOffset, 4).getUint32(0);
    if (length === 0) throw new CloudError("E_BAD_FRAME", "Empty control frame");
    if (length > this.#maxFrameBytes) {
      throw new CloudError(
        "E_FRAME_TOO_LARGE",
        `Frame of ${length} bytes exceeds the cap of ${this.#maxFrameBytes}`,
      );
    }
    const payload = await this.readExact(length);
    if (payload === null) {
      throw new CloudError("E_BAD_FRAME", "Connection ended in the middle of a frame");
    }
    return decodeFramePayload(payload);
  }

  /**
   * A stream of exactly `length` raw bytes that follow on the connection. It must be read
   * to its end (or cancelled with {@link FrameReader.skip} semantics) before the next
   * frame is read. Errors with E_BAD_FRAME if the connection ends early.
   */
  body(length: number): ReadableStream<Uint8Array> {
    this.#bodyRemaining = length;
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        if (this.#bodyRemaining === 0) {
          controller.close();
          return;
        }
        if (this.#buffered.length === 0 && !(await this.#fill())) {
          controller.error(
            new CloudError(
              "E_BAD_FRAME",
              `Connection ended with ${this.#bodyRemaining} body bytes missing`,
            ),
          );
          return;
        }
        const n = Math.min(this.#bodyRemaining, this.#buffered.length);
        const chunk = this.#take(n);
        this.#bodyRemaining -= n;
        controller.enqueue(chunk);
        if (this.#bodyRemaining === 0) controller.close();
      },
    }, new ByteLengthQueuingStrategy({ highWaterMark: BODY_READ_AHEAD_BYTES }));
  }

  /**
   * Reads and discards what is left of the current body (after its consumer failed part
   * way), so the next frame can be read.
   */
  async discardBody(): Promise<void> {
    const left = this.#bodyRemaining;
    this.#bodyRemaining = 0;
    await this.skip(left);
  }

  /** Reads and discards `length` body bytes (after a refused upload, say). */
  async skip(length: number): Promise<void> {
    let remaining = length;
    while (remaining > 0) {
      if (this.#buffered.length === 0 && !(await this.#fill())) {
        throw new CloudError(
          "E_BAD_FRAME",
          `Connection ended with ${remaining} body bytes missing`,
        );
      }
      const n = Math.min(remaining, this.#buffered.length);
      this.#take(n);
      remaining -= n;
    }
  }

  /** Releases the underlying reader. */
  release(): void {
    try {
      this.#reader.releaseLock();
    } catch {
      // already released
    }
  }

  /** Cancels the underlying stream. */
  async cancel(): Promise<void> {
    await this.#reader.cancel().catch(() => {});
  }
}

/** Writes preambles, frames and raw bodies to one writable stream, one at a time. */
export class FrameWriter {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #maxFrameBytes: number;

  #onActivity: () => void;

  constructor(writable: WritableStream<Uint8Array>, options: FrameReaderOptions = {}) {
    this.#writer = writable.getWriter();
    this.#maxFrameBytes = options.maxFrameBytes ?? MAX_FRAME_BYTES;
    this.#onActivity = options.onActivity ?? (() => {});
  }

  /** Writes the preamble for `version`. */
  async writePreamble(version: number = PROTOCOL_VERSION): Promise<void> {
    await this.#writer.write(encodePreamble(version));
  }

  /** Writes one control frame. */
  async writeFrame(message: unknown): Promise<void> {
    await this.#writer.write(encodeFrame(message, this.#maxFrameBytes));
  }

  /** Writes raw bytes (part of a declared body). */
  async writeBytes(bytes: Uint8Array): Promise<void> {
    await this.#writer.write(bytes);
  }

  /**
   * Pipes exactly `length` bytes from `source` as a body. Throws E_INTEGRITY if the source
   * yields a different number of bytes (the peer would otherwise lose framing).
   */
  async writeBody(source: ReadableStream<Uint8Array>, length: number): Promise<void> {
    let sent = 0;
    for await (const chunk of source) {
      if (sent + chunk.length > length) {
        throw new CloudError("E_INTEGRITY", "Source grew while it was being sent");
      }
      await this.#writer.write(chunk);
      this.#onActivity();
      sent += chunk.length;
    }
    if (sent !== length) {
      throw new CloudError(
        "E_INTEGRITY",
        `Source shrank while it was being sent (${sent} of ${length} bytes)`,
      );
    }
  }

  /** Aborts the stream: pending writes fail at once. */
  async abort(reason?: unknown): Promise<void> {
    await this.#writer.abort(reason).catch(() => {});
  }

  /** Closes the stream (ends the connection's write side). */
  async close(): Promise<void> {
    await this.#writer.close().catch(() => {});
  }

  /** Releases the underlying writer without closing. */
  release(): void {
    try {
      this.#writer.releaseLock();
    } catch {
      // already released
    }
  }
}

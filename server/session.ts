/**
 * One connection's life: Hello, then a loop of request frames answered in order, with a
 * state machine that refuses file operations before login and idle limits. Written
 * against a `{ readable, writable }` duplex so tests can drive it with in-memory streams.
 *
 * @module
 */

import { CloudError, FATAL_CODES, isErrorCode } from "../protocol/errors.ts";
import {
  decodePreamble,
  FrameReader,
  FrameWriter,
  PREAMBLE_LENGTH,
  PROTOCOL_VERSION,
} from "../protocol/frame.ts";
import { AUTHENTICATED_REQUESTS, parseRequest, type RequestType } from "../protocol/messages.ts";
import {
  Deferred,
  type Handler,
  type HandlerTable,
  type ServerContext,
  type Session,
} from "./context.ts";
import { sourceKey } from "./source.ts";

/** A bidirectional byte stream (a TLS connection, or a pair of in-memory streams). */
export interface Duplex {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
}

/** Timeouts of a session, in milliseconds. */
export interface SessionTimeouts {
  /** Silence allowed before login (SPEC: 15 s). */
  unauthenticatedIdleMs: number;
  /** Silence allowed after login (SPEC: 10 min). */
  authenticatedIdleMs: number;
}

/** Default timeouts of SPEC section 4. */
export const DEFAULT_TIMEOUTS: SessionTimeouts = {
  unauthenticatedIdleMs: 15_000,
  authenticatedIdleMs: 10 * 60_000,
};

/** Options of {@link runSession}. */
export interface SessionOptions {
  /** Remote address (IP) of the peer. */
  address: string;
  handlers: HandlerTable;
  timeouts?: SessionTimeouts;
  /** Aborted when the server shuts down: the session ends after the current request. */
  signal?: AbortSignal;
}

class IdleTimeout extends Error {}

/**
 * Races `promise` against an idle timer and the shutdown signal; rejects with IdleTimeout
 * when the timer fires and with E_SHUTDOWN when the signal aborts.
 */
async function withIdle<T>(promise: Promise<T>, ms: number, signal?: AbortSignal): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new IdleTimeout()), ms);
    onAbort = () => reject(new CloudError("E_SHUTDOWN", "Server is shutting down"));
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([promise, idle]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
  }
}

/** How long closing may wait for queued bytes to reach the peer. */
const CLOSE_GRACE_MS = 5000;

/** Deferred answers allowed in flight before the session waits for them. */
const MAX_DEFERRED = 32;

/** A non-CloudError from a deferred request is a bug: log it, answer E_INTERNAL. */
function asAnswerable(ctx: ServerContext, session: Session, error: unknown): CloudError {
  if (error instanceof CloudError) return error;
  ctx.log.event("internal_error", {
    src: session.address,
    message: error instanceof Error ? (error.stack ?? error.message) : String(error),
  });
  return new CloudError("E_INTERNAL", "Internal server error");
}

function errorFrame(error: CloudError): Record<string, unknown> {
  return { t: "error", code: error.code, message: error.message, ...error.details };
}

/**
 * Serves one connection until the peer leaves, a fatal protocol error, an idle timeout or
 * shutdown. Never throws: every failure is answered (when the stream still allows) and
 * logged, and the connection is closed.
 */
export async function runSession(
  ctx: ServerContext,
  duplex: Duplex,
  options: SessionOptions,
): Promise<void> {
  const timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
  // A transfer that stalls (no byte either way) for as long as the idle limit is cut off;
  // waits between requests are timed by withIdle, which can still answer E_IDLE.
  let lastActivity = Date.now();
  const onActivity = () => {
    lastActivity = Date.now();
  };
  const reader = new FrameReader(duplex.readable, { onActivity });
  const writer = new FrameWriter(duplex.writable, { onActivity });
  const watchdog = setInterval(() => {
    if (Date.now() - lastActivity > idleMs() + 2000) {
      ctx.log.event("stall_close", { src: session.address, user: session.email ?? undefined });
      clearInterval(watchdog);
      writer.abort(new CloudError("E_IDLE", "Transfer stalled"));
      reader.cancel();
    }
  }, Math.min(1000, timeouts.unauthenticatedIdleMs));
  const session: Session = {
    address: options.address,
    source: sourceKey(options.address),
    userId: null,
    email: null,
  };
  const io = { reader, writer };
  const idleMs = () =>
    session.userId === null ? timeouts.unauthenticatedIdleMs : timeouts.authenticatedIdleMs;
  const send = (message: Record<string, unknown>) => writer.writeFrame(message);

  try {
    const preamble = await withIdle(
      reader.readExact(PREAMBLE_LENGTH),
      timeouts.unauthenticatedIdleMs,
      options.signal,
    );
    if (preamble === null) return;
    // Answer with our preamble first, so the peer can tell garbage from an old version.
    await writer.writePreamble();
    const version = decodePreamble(preamble);
    if (version !== PROTOCOL_VERSION) {
      throw new CloudError(
        "E_VERSION",
        `Protocol version ${version} is not supported; this server speaks ${PROTOCOL_VERSION}`,
      );
    }
    await send({
      t: "hello",
      version: PROTOCOL_VERSION,
      server: ctx.limits.serverName,
      maxFrameBytes: 64 * 1024,
    });

    // Answers of deferred requests (pipelined inline uploads) are sent in request order;
    // `answered` settles when every answer so far has been sent.
    let answered: Promise<void> = Promise.resolve();
    let inFlight = 0;
    const defer = (result: Promise<Record<string, unknown> | null>) => {
      const previous = answered;
      inFlight++;
      answered = (async () => {
        let message: Record<string, unknown> | null;
        try {
          const payload = await result;
          message = payload === null ? null : { t: "ok", ...payload };
        } catch (error) {
          message = errorFrame(asAnswerable(ctx, session, error));
        } finally {
          inFlight--;
        }
        await previous;
        if (message) await send(message);
      })();
      answered.catch(() => {}); // awaited below; this only marks it handled
    };

    while (true) {
      let frame: unknown;
      onActivity();
      try {
        frame = await withIdle(reader.readFrame(), idleMs(), options.signal);
      } catch (error) {
        // A payload that is not JSON still had a known length: framing holds, go on.
        if (!(error instanceof CloudError) || error.code !== "E_BAD_JSON") throw error;
        await answered;
        await send(errorFrame(error));
        continue;
      }
      if (frame === null) {
        await answered;
        return;
      }
      let type: RequestType | undefined;
      try {
        const request = parseRequest(frame);
        type = request.t;
        if (type === "bye") {
          await answered;
          await send({ t: "ok" });
          return;
        }
        if (AUTHENTICATED_REQUESTS.has(type) && session.userId === null) {
          const refusal = new CloudError("E_NOT_LOGGED_IN", "Log in first");
          if (type === "put" && request.t === "put" && request.mode === "inline") {
            // Its body follows; skipping it would let anyone hold the connection with an
            // endless body, so a stranger's upload ends the connection instead.
            await answered;
            await send(errorFrame(refusal));
            return;
          }
          throw refusal;
        }
        const handler = options.handlers[type] as Handler<typeof type> | undefined;
        if (!handler) throw new CloudError("E_UNKNOWN_TYPE", `Unsupported request "${type}"`);
        const deferrable = type === "put" && request.t === "put" && request.mode === "inline";
        if (!deferrable || inFlight >= MAX_DEFERRED) await answered;
        const payload = await handler(ctx, session, request as never, io);
        if (payload instanceof Deferred) {
          defer(payload.result);
        } else {
          await answered;
          if (payload !== null) await send({ t: "ok", ...payload });
        }
      } catch (error) {
        if (!(error instanceof CloudError)) throw error;
        if (FATAL_CODES.has(error.code)) throw error;
        await answered;
        await send(errorFrame(error));
      }
    }
  } catch (error) {
    if (error instanceof IdleTimeout) {
      ctx.log.event("idle_close", { src: session.address, user: session.email ?? undefined });
      await send(errorFrame(new CloudError("E_IDLE", "Closed after inactivity"))).catch(() => {});
    } else if (error instanceof CloudError && isErrorCode(error.code)) {
      if (error.code !== "E_SHUTDOWN") {
        ctx.log.event("protocol_error", {
          src: session.address,
          code: error.code,
          message: error.message,
        });
      }
      await send(errorFrame(error)).catch(() => {});
    } else if (!isConnectionError(error)) {
      ctx.log.event("internal_error", {
        src: session.address,
        message: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
      await send(errorFrame(new CloudError("E_INTERNAL", "Internal server error"))).catch(
        () => {},
      );
    }
  } finally {
    clearInterval(watchdog);
    // A peer that stops reading must not keep the session (and its slot) forever.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      writer.close(),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, CLOSE_GRACE_MS);
      }),
    ]);
    clearTimeout(timer);
    await reader.cancel();
  }
}

const NODE_CONNECTION_CODES = new Set([
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "ETIMEDOUT",
  "ERR_STREAM_PREMATURE_CLOSE",
  "ERR_STREAM_DESTROYED",
  "ERR_STREAM_WRITE_AFTER_END",
  "ABORT_ERR",
]);

/** True for errors that only mean the peer went away. */
export function isConnectionError(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.BadResource ||
    (error instanceof Error && NODE_CONNECTION_CODES.has((error as { code?: string }).code ?? ""));
}

/**
 * What request handlers see: the shared server context, the per-connection session and
 * the connection's frame reader and writer.
 *
 * @module
 */

import type { FrameReader, FrameWriter } from "../protocol/frame.ts";
import type { RequestOf, RequestType } from "../protocol/messages.ts";
import type { HasherPool } from "./hasher.ts";
import type { LoginGuard } from "./lockout.ts";
import type { Logger } from "./log.ts";
import type { Storage } from "./storage.ts";
import type { Store } from "./store.ts";

/** Limits and settings handlers need. */
export interface ServerLimits {
  /** Name shown to clients in hello and discovery. */
  serverName: string;
  /** Default per-user quota in bytes; null is unlimited. */
  defaultQuota: number | null;
  /** Largest file accepted, in bytes; null is unlimited. */
  maxFileSize: number | null;
  /** Uploads at most this big may be sent inline (body right after the request). */
  maxInlineBytes: number;
}

/** Shared by every session of one server. */
export interface ServerContext {
  store: Store;
  storage: Storage;
  hasher: HasherPool;
  guard: LoginGuard;
  log: Logger;
  limits: ServerLimits;
  /** Bytes reserved against each user's quota by uploads in progress, by user id. */
  reserved: Map<number, number>;
}

/** Per-connection state. */
export interface Session {
  /** Remote address as seen by the listener. */
  address: string;
  /** The lockout key of the address (IPv4 /32, IPv6 /56). */
  source: string;
  /** Logged-in user, or null. */
  userId: number | null;
  email: string | null;
}

/** The connection's framing, for handlers that move raw bytes. */
export interface SessionIo {
  reader: FrameReader;
  writer: FrameWriter;
}

/**
 * An answer that is still being worked out while the session reads the next request
 * (a pipelined inline upload being fsynced). Answers are still sent in request order.
 */
export class Deferred {
  constructor(readonly result: Promise<Record<string, unknown> | null>) {}
}

/**
 * A request handler: a validated request in, the `ok` payload out. A handler that answers
 * on its own (it streams a body) returns null; one that has consumed its input and can
 * finish in the background returns a {@link Deferred}. Failures are thrown as CloudError.
 */
export type Handler<T extends RequestType> = (
  ctx: ServerContext,
  session: Session,
  request: RequestOf<T>,
  io: SessionIo,
) => Promise<Record<string, unknown> | null | Deferred>;

/** Handlers by request type. */
export type HandlerTable = { [T in RequestType]?: Handler<T> };

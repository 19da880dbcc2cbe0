/**
 * File requests (SPEC section 6): ls, put, get, rm, mv, mkdir, df. Every name is checked
 * by server/names.ts before anything else; bytes go through the Storage interface and
 * their records through the Store.
 *
 * @module
 */

import { CloudError } from "../../protocol/errors.ts";
import { coalesce } from "../../protocol/frame.ts";
import type { Entry, RequestOf } from "../../protocol/messages.ts";
import {
  Deferred,
  type HandlerTable,
  type ServerContext,
  type Session,
  type SessionIo,
} from "../context.ts";
import { isWithin, joinPath, validatePath } from "../names.ts";
import type { StoredObject } from "../storage.ts";
import { KeyedMutex } from "../mutex.ts";

/** Bytes of entries in one `ls` page (a frame holds 64 KiB). */
const LS_PAGE_BYTES = 48 * 1024;
const encoder = new TextEncoder();

/** Serialises commit-and-record per (user, path) so disk and database agree. */
const pathLocks = new KeyedMutex();
const lockKey = (userId: number, path: string) => `${userId}\0${path}`;

function toEntry(object: StoredObject, sha256: string | null): Entry {
  return {
    name: object.name,
    type: object.type,
    size: object.type === "dir" ? 0 : object.size,
    sha256: object.type === "dir" ? null : sha256,
    modified: object.modified.getTime(),
  };
}

async function quotaOf(ctx: ServerContext, userId: number): Promise<number | null> {
  const user = await ctx.store.findUserById(userId);
  return user?.quotaBytes ?? ctx.limits.defaultQuota;
}

/** Bytes the user holds: recorded files plus partial uploads. */
async function usedBytes(ctx: ServerContext, userId: number): Promise<number> {
  const [usage, partial] = await Promise.all([
    ctx.store.usage(userId),
    ctx.storage.partialBytes(userId),
  ]);
  return usage.bytes + partial;
}

/** Per-user checks of quota and reservation run one at a time, so two can't both pass. */
const quotaLocks = new KeyedMutex();

/** Refuses a file over the server's maximum size. */
function checkMaxSize(ctx: ServerContext, size: number): void {
  const max = ctx.limits.maxFileSize;
  if (max !== null && size > max) {
    throw new CloudError("E_TOO_LARGE", `File of ${size} bytes exceeds the maximum of ${max}`);
  }
}

/**
 * Reserves the bytes still to come against the user's quota, for all of the user's
 * connections at once (several parallel uploads can't pass the quota together). Returns
 * the release of the reservation: call it when the upload ends, whatever the outcome.
 */
function reserveSpace(
  ctx: ServerContext,
  userId: number,
  path: string,
  size: number,
  alreadyHeld: number,
): Promise<() => void> {
  return quotaLocks.run(String(userId), async () => {
    const quota = await quotaOf(ctx, userId);
    if (quota === null) return () => {};
    const existing = await ctx.store.getFile(userId, path);
    const reserved = ctx.reserved.get(userId) ?? 0;
    const used = (await usedBytes(ctx, userId)) + reserved;
    const after = used - alreadyHeld - (existing?.size ?? 0) + size;
    if (after > quota) {
      throw new CloudError(
        "E_QUOTA",
        `Quota exceeded: ${size} more bytes would make ${after} of ${quota}`,
      );
    }
    const amount = size - alreadyHeld;
    ctx.reserved.set(userId, reserved + amount);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (ctx.reserved.get(userId) ?? 0) - amount;
      if (left > 0) ctx.reserved.set(userId, left);
      else ctx.reserved.delete(userId);
    };
  });
}

type PutRequest = RequestOf<"put">;

/** Pipelined inline uploads to one path commit in the order they were sent. */
const inlineTails = new WeakMap<Session, Map<string, Promise<unknown>>>();

/** Reads exactly `length` body bytes into memory (inline uploads are at most 1 MiB). */
async function readBody(io: SessionIo, length: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let at = 0;
  for await (const chunk of io.reader.body(length)) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/** Stores an upload, then records it. */
async function store(
  ctx: ServerContext,
  session: Session,
  path: string,
  request: PutRequest,
  options: {
    resumable: boolean;
    /** Space already reserved by the caller; else reserved here once the offset is known. */
    release?: () => void;
    /** Called once the storage knows the offset it holds; returns the bytes from there. */
    source: (offset: number) => Promise<ReadableStream<Uint8Array>>;
  },
) {
  const userId = session.userId!;
  let release = options.release;
  try {
    const upload = await ctx.storage.openUpload(userId, {
      path,
      size: request.size,
      sha256: request.sha256,
      overwrite: request.overwrite,
      resumable: options.resumable,
      ...(request.mtime !== undefined ? { modified: new Date(request.mtime) } : {}),
    });
    try {
      // The bytes a resumed partial already holds count toward the quota once, not twice.
      release ??= await reserveSpace(ctx, userId, path, request.size, upload.offset).catch(
        async (error) => {
          // Refused before any byte: leave nothing behind (a held partial stays resumable).
          if (upload.offset === 0) await upload.abort();
          throw error;
        },
      );
      await upload.write(await options.source(upload.offset));
      const object = await pathLocks.run(lockKey(userId, path), async () => {
        const committed = await upload.commit();
        await ctx.store.putFile({
          userId,
          path,
          size: request.size,
          sha256: request.sha256,
          modified: committed.modified,
        });
        return committed;
      });
      ctx.log.event("put", { user: session.email, path, size: request.size });
      return { entry: toEntry(object, request.sha256) };
    } catch (error) {
      // A full disk is a broken upload, not an interrupted one: keeping the partial would
      // keep the disk full (the database too, when it lives in the data folder) for 24 h.
      if (error instanceof CloudError && error.code === "E_NO_SPACE") await upload.abort();
      throw error;
    } finally {
      await upload.close();
    }
  } finally {
    release?.();
  }
}

/**
 * An inline upload: checks and reserves space, reads its body (a refused one is skipped,
 * so the framing holds), then stores it in the background while the session reads the
 * next request. Uploads to one path still commit in the order they were sent.
 */
async function putInline(
  ctx: ServerContext,
  session: Session,
  request: PutRequest,
  io: SessionIo,
): Promise<Deferred> {
  if (request.size > ctx.limits.maxInlineBytes) {
    // Not skipped: a client could otherwise hold the connection with an endless body.
    throw new CloudError(
      "E_FRAME_TOO_LARGE",
      "Inline uploads are limited to 1 MiB; use a resumable upload",
    );
  }
  let path: string;
  let release: () => void;
  try {
    path = validatePath(request.path);
    checkMaxSize(ctx, request.size);
    release = await reserveSpace(ctx, session.userId!, path, request.size, 0);
  } catch (error) {
    await io.reader.skip(request.size);
    throw error;
  }
  let bytes: Uint8Array;
  try {
    bytes = await readBody(io, request.size);
  } catch (error) {
    release();
    throw error;
  }
  let tails = inlineTails.get(session);
  if (!tails) inlineTails.set(session, tails = new Map());
  const before = tails.get(path) ?? Promise.resolve();
  const result = before.then(() =>
    store(ctx, session, path, request, {
      resumable: false,
      release,
      source: () => Promise.resolve(ReadableStream.from([bytes])),
    })
  );
  const tail = result.catch(() => {});
  tails.set(path, tail);
  tail.then(() => {
    if (tails.get(path) === tail) tails.delete(path);
  });
  return new Deferred(result);
}

/** A resumable upload: `ready` with the offset held, then the rest of the bytes. */
async function putResumable(
  ctx: ServerContext,
  session: Session,
  request: PutRequest,
  io: SessionIo,
) {
  const path = validatePath(request.path);
  checkMaxSize(ctx, request.size);
  let bodyStarted = false;
  try {
    return await store(ctx, session, path, request, {
      resumable: true,
      source: async (offset) => {
        await io.writer.writeFrame({ t: "ready", offset });
        bodyStarted = true;
        return io.reader.body(request.size - offset).pipeThrough(coalesce());
      },
    });
  } catch (error) {
    if (error instanceof CloudError && error.code === "E_BAD_FRAME") throw error;
    // Keep the framing: discard what is left of a started body.
    if (bodyStarted) await io.reader.discardBody();
    throw error;
  }
}

async function shaOf(ctx: ServerContext, userId: number, path: string): Promise<string> {
  const record = await ctx.store.getFile(userId, path);
  if (!record) {
    throw new CloudError("E_INTEGRITY", `No checksum recorded for "${path}"; run cloud admin fsck`);
  }
  return record.sha256;
}

/** Handlers of the file requests. */
export const fileHandlers: HandlerTable = {
  ls: async (ctx, session, request) => {
    const userId = session.userId!;
    const dir = validatePath(request.path, { allowRoot: true });
    const after = request.after;
    const objects = (await ctx.storage.list(userId, dir))
      .filter((o) => after === undefined || o.name > after)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const records = new Map(
      (await ctx.store.listFiles(userId, dir)).map((r) => [r.path, r.sha256]),
    );
    // One page must fit a control frame: stop well below the 64 KiB cap.
    const entries: Entry[] = [];
    let bytes = 0;
    for (const object of objects) {
      const entry = toEntry(object, records.get(joinPath(dir, object.name)) ?? null);
      bytes += encoder.encode(JSON.stringify(entry)).length + 1;
      if (bytes > LS_PAGE_BYTES && entries.length > 0) break;
      entries.push(entry);
    }
    const next = entries.length < objects.length ? entries[entries.length - 1]!.name : null;
    return { path: dir, entries, next };
  },

  put: (ctx, session, request, io) =>
    request.mode === "inline"
      ? putInline(ctx, session, request, io)
      : putResumable(ctx, session, request, io),

  get: async (ctx, session, request, io) => {
    const userId = session.userId!;
    const path = validatePath(request.path);
    const opened = await pathLocks.run(lockKey(userId, path), async () => {
      const reading = await ctx.storage.read(userId, path, 0);
      if (request.offset > reading.size) {
        await reading.stream.cancel();
        throw new CloudError(
          "E_OFFSET",
          `Offset ${request.offset} is past the end of "${path}" (${reading.size} bytes)`,
          { offset: reading.size },
        );
      }
      const sha256 = await shaOf(ctx, userId, path).catch(async (error) => {
        await reading.stream.cancel();
        throw error;
      });
      if (request.offset === 0) return { ...reading, sha256 };
      await reading.stream.cancel();
      return { ...(await ctx.storage.read(userId, path, request.offset)), sha256 };
    });
    const length = opened.size - request.offset;
    try {
      await io.writer.writeFrame({
        t: "data",
        size: opened.size,
        sha256: opened.sha256,
        offset: request.offset,
        length,
        modified: opened.modified.getTime(),
      });
    } catch (error) {
      await opened.stream.cancel().catch(() => {});
      throw error;
    }
    try {
      await io.writer.writeBody(opened.stream, length);
    } catch (error) {
      // Part of the body may be on the wire: no answer can follow it, so the connection ends.
      throw new Error(`Sending "${path}" failed part-way`, { cause: error });
    }
    ctx.log.event("get", { user: session.email, path, offset: request.offset, length });
    return null;
  },

  rm: async (ctx, session, request) => {
    const userId = session.userId!;
    const path = validatePath(request.path);
    return await pathLocks.run(lockKey(userId, path), async () => {
      const removed = await ctx.storage.remove(userId, path, request.recursive);
      await ctx.store.deleteTree(userId, path);
      ctx.log.event("rm", { user: session.email, path, removed });
      return { removed };
    });
  },

  mv: async (ctx, session, request) => {
    const userId = session.userId!;
    const from = validatePath(request.from);
    const to = validatePath(request.to);
    if (from === to) throw new CloudError("E_EXISTS", `"${to}" is the same name`);
    if (isWithin(to, from)) {
      throw new CloudError("E_BAD_NAME", `Cannot move "${from}" into itself`);
    }
    // Both names are locked, in a fixed order, so no upload commits to either meanwhile.
    const [first, second] = [lockKey(userId, from), lockKey(userId, to)].sort();
    return await pathLocks.run(first!, () =>
      pathLocks.run(second!, async () => {
        await ctx.storage.rename(userId, from, to, request.overwrite);
        if (request.overwrite) await ctx.store.deleteTree(userId, to);
        await ctx.store.renamePath(userId, from, to);
        const object = await ctx.storage.stat(userId, to);
        if (!object) throw new CloudError("E_NOT_FOUND", `"${to}" vanished`);
        const record = await ctx.store.getFile(userId, to);
        ctx.log.event("mv", { user: session.email, from, to });
        return { entry: toEntry(object, record?.sha256 ?? null) };
      }));
  },

  mkdir: async (ctx, session, request) => {
    const path = validatePath(request.path);
    const object = await ctx.storage.mkdir(session.userId!, path, request.parents);
    return { entry: toEntry(object, null) };
  },

  df: async (ctx, session) => {
    const userId = session.userId!;
    const usage = await ctx.store.usage(userId);
    const partial = await ctx.storage.partialBytes(userId);
    return {
      used: usage.bytes + partial,
      quota: await quotaOf(ctx, userId),
      files: usage.files,
      maxFileSize: ctx.limits.maxFileSize,
    };
  },
};

/**
 * Wire messages of protocol v1, as schemas. Every control frame is one JSON object with a
 * type field `t`; the server validates each request with {@link parseRequest} before any
 * handler sees it. Wire types stay here; domain types live in server/ and client/.
 *
 * @module
 */

import { z } from "zod";
import { CloudError } from "./errors.ts";

/** Largest size a file may declare (2^53-1, the largest exact JS integer). */
const size = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lower-case hex digits");
/** Paths are checked for real by server/names.ts; here only their wire size. */
const path = z.string().max(4096);

/** Client requests, by type. */
export const RequestSchemas = {
  register: z.strictObject({
    t: z.literal("register"),
    email: z.string().max(320),
    password: z.string().max(1024),
    name: z.string().max(200),
    phone: z.string().max(100),
  }),
  login: z.strictObject({
    t: z.literal("login"),
    email: z.string().max(320),
    password: z.string().max(1024),
  }),
  whoami: z.strictObject({ t: z.literal("whoami") }),
  passwd: z.strictObject({
    t: z.literal("passwd"),
    password: z.string().max(1024),
    newPassword: z.string().max(1024),
  }),
  logout: z.strictObject({ t: z.literal("logout") }),
  ls: z.strictObject({
    t: z.literal("ls"),
    path,
    /** Continue a listing after this name (the previous page's `next`). */
    after: z.string().max(1024).optional(),
  }),
  put: z.strictObject({
    t: z.literal("put"),
    path,
    size,
    sha256,
    overwrite: z.boolean(),
    /**
     * "inline": the body follows this frame at once and the server always consumes it
     * (fast for small files). "resumable": the server answers `ready` with the offset it
     * already holds, then the client sends the bytes from there.
     */
    mode: z.enum(["inline", "resumable"]),
    /** Modification time to record, milliseconds since the epoch. */
    mtime: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  }),
  get: z.strictObject({ t: z.literal("get"), path, offset: size }),
  rm: z.strictObject({ t: z.literal("rm"), path, recursive: z.boolean() }),
  mv: z.strictObject({
    t: z.literal("mv"),
    from: path,
    to: path,
    overwrite: z.boolean(),
  }),
  mkdir: z.strictObject({ t: z.literal("mkdir"), path, parents: z.boolean() }),
  df: z.strictObject({ t: z.literal("df") }),
  bye: z.strictObject({ t: z.literal("bye") }),
} as const;

/** The type names of requests. */
export type RequestType = keyof typeof RequestSchemas;
/** A validated request of type `T`. */
export type RequestOf<T extends RequestType> = z.infer<(typeof RequestSchemas)[T]>;
/** Any validated request. */
export type Request = { [T in RequestType]: RequestOf<T> }[RequestType];

/** Requests that need a logged-in session. */
export const AUTHENTICATED_REQUESTS: ReadonlySet<RequestType> = new Set<RequestType>([
  "whoami",
  "passwd",
  "logout",
  "ls",
  "put",
  "get",
  "rm",
  "mv",
  "mkdir",
  "df",
]);

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join(".") || "message"}: ${issue.message}`)
    .join("; ");
}

/**
 * Validates a decoded frame as a request. Throws E_BAD_MESSAGE for a non-object or a
 * schema mismatch and E_UNKNOWN_TYPE for a type this version does not know.
 */
export function parseRequest(value: unknown): Request {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new CloudError("E_BAD_MESSAGE", "A message must be a JSON object");
  }
  const type = (value as { t?: unknown }).t;
  if (typeof type !== "string") {
    throw new CloudError("E_BAD_MESSAGE", 'A message needs a string type "t"');
  }
  if (!Object.hasOwn(RequestSchemas, type)) {
    throw new CloudError("E_UNKNOWN_TYPE", `Unknown message type "${type.slice(0, 40)}"`);
  }
  const result = RequestSchemas[type as RequestType].safeParse(value);
  if (!result.success) {
    throw new CloudError(
      "E_BAD_MESSAGE",
      `Invalid "${type}" message: ${describeIssues(result.error)}`,
    );
  }
  return result.data as Request;
}

/** A directory entry as listed on the wire. */
export const EntrySchema = z.object({
  name: z.string(),
  type: z.enum(["file", "dir"]),
  size: size,
  sha256: sha256.nullable(),
  /** Modification time, milliseconds since the epoch. */
  modified: z.number(),
});
/** A directory entry. */
export type Entry = z.infer<typeof EntrySchema>;

/** Server responses, by type. */
export const ResponseSchemas = {
  hello: z.object({
    t: z.literal("hello"),
    version: z.number().int(),
    server: z.string(),
    maxFrameBytes: z.number().int(),
  }),
  ok: z.looseObject({ t: z.literal("ok") }),
  error: z.object({
    t: z.literal("error"),
    code: z.string(),
    message: z.string(),
    retryAt: z.string().optional(),
    offset: z.number().optional(),
  }),
  /** Answer to a resumable put: send the bytes from `offset`. */
  ready: z.object({ t: z.literal("ready"), offset: size }),
  /** Answer to get: `length` raw bytes follow, the file's bytes from `offset`. */
  data: z.object({
    t: z.literal("data"),
    size,
    sha256,
    offset: size,
    length: size,
    modified: z.number(),
  }),
} as const;

/** The type names of responses. */
export type ResponseType = keyof typeof ResponseSchemas;
/** A validated response of type `T`. */
export type ResponseOf<T extends ResponseType> = z.infer<(typeof ResponseSchemas)[T]>;
/** Any validated response. */
export type Response = { [T in ResponseType]: ResponseOf<T> }[ResponseType];

/** Validates a decoded frame as a response (client side). */
export function parseResponse(value: unknown): Response {
  const type = typeof value === "object" && value !== null ? (value as { t?: unknown }).t : null;
  if (typeof type !== "string" || !Object.hasOwn(ResponseSchemas, type)) {
    throw new CloudError("E_BAD_MESSAGE", "Server sent a message of unknown type");
  }
  const result = ResponseSchemas[type as ResponseType].safeParse(value);
  if (!result.success) {
    throw new CloudError(
      "E_BAD_MESSAGE",
      `Server sent an invalid "${type}": ${describeIssues(result.error)}`,
    );
  }
  return result.data as Response;
}

/** Response payloads of `ok` per request type (documentation and client typing). */
export interface OkPayloads {
  register: { email: string };
  login: { email: string; name: string };
  whoami: { id: number; email: string; name: string; phone: string; createdAt: string };
  passwd: Record<string, never>;
  logout: Record<string, never>;
  /** One page of a folder, sorted by name; `next` is the cursor of the next page, or null. */
  ls: { path: string; entries: Entry[]; next: string | null };
  put: { entry: Entry };
  rm: { removed: number };
  mv: { entry: Entry };
  mkdir: { entry: Entry };
  df: { used: number; quota: number | null; files: number; maxFileSize: number | null };
  bye: Record<string, never>;
}

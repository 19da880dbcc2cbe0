/**
 * Stable wire error codes, their exit codes (SPEC.md section 2) and the error class that
 * carries them. One table, used by the server to answer and by the client to exit.
 *
 * A code is never reused for a new meaning; new conditions get new codes.
 *
 * @module
 */

/** Every error code that can cross the wire, with the CLI exit code it maps to. */
export const ERROR_CODES = {
  /** Anything unexpected on the server; the details stay in the server log. */
  E_INTERNAL: 1,
  /** The first bytes of the connection were not the `cloud` magic. */
  E_BAD_MAGIC: 1,
  /** The peer speaks a protocol version this side does not support. */
  E_VERSION: 1,
  /** A frame header was invalid (zero length, truncated). */
  E_BAD_FRAME: 1,
  /** A frame declared more bytes than the cap. */
  E_FRAME_TOO_LARGE: 1,
  /** A frame body was not valid UTF-8 JSON. */
  E_BAD_JSON: 1,
  /** A message had a type this version does not know. */
  E_UNKNOWN_TYPE: 1,
  /** A message did not match its schema (missing field, wrong type, bad value). */
  E_BAD_MESSAGE: 2,
  /** A field failed a validation rule (email, name, phone, password). */
  E_INVALID: 2,
  /** The password is too weak or too common. */
  E_WEAK_PASSWORD: 2,
  /** A path or file name was refused (.., absolute, control bytes, too long, ...). */
  E_BAD_NAME: 2,
  /** The operation needs a logged-in session. */
  E_NOT_LOGGED_IN: 3,
  /** Wrong email or password (never says which). */
  E_AUTH: 3,
  /** The account is locked after failed logins; `retryAt` says until when. */
  E_LOCKED: 4,
  /** The source address is blocked after failed logins; `retryAt` says until when. */
  E_BLOCKED: 4,
  /** The file or folder does not exist. */
  E_NOT_FOUND: 5,
  /** The account, file or folder already exists. */
  E_EXISTS: 6,
  /** The user's quota would be exceeded. */
  E_QUOTA: 7,
  /** The file is larger than the server's maximum file size. */
  E_TOO_LARGE: 7,
  /** The server has no space left. */
  E_NO_SPACE: 7,
  /** Size or SHA-256 of transferred bytes did not match what was declared. */
  E_INTEGRITY: 8,
  /** A resume offset did not match what the server holds (like tus 409). */
  E_OFFSET: 1,
  /** Too many connections from this source address. */
  E_BUSY: 1,
  /** The connection was idle too long. */
  E_IDLE: 1,
  /** The server is shutting down. */
  E_SHUTDOWN: 1,
  /** A folder is not empty, or the operation targets the wrong kind of entry. */
  E_CONFLICT: 1,
  /** Could not reach the server, or its certificate is not trusted. */
  E_UNREACHABLE: 9,
  /** The server's certificate changed since it was pinned. */
  E_TRUST: 9,
} as const;

/** A stable error code string. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Exit codes of the CLI, SPEC.md section 2. */
export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  AUTH: 3,
  LOCKED: 4,
  NOT_FOUND: 5,
  EXISTS: 6,
  QUOTA: 7,
  INTEGRITY: 8,
  UNREACHABLE: 9,
} as const;

/** Returns true when `code` is a known wire error code. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ERROR_CODES, code);
}

/** The exit code for a wire error code (1 for unknown codes). */
export function exitCodeFor(code: string): number {
  return isErrorCode(code) ? ERROR_CODES[code] : EXIT.ERROR;
}

/** Extra data some errors carry. */
export interface CloudErrorDetails {
  /** For E_LOCKED / E_BLOCKED: when a retry may succeed (ISO 8601). */
  retryAt?: string;
  /** For E_OFFSET: the offset the server holds. */
  offset?: number;
}

/**
 * An error with a stable wire code. Thrown by protocol, server and client code for
 * conditions callers handle; the CLI maps it to an exit code.
 *
 * @example
 * ```ts
 * throw new CloudError("E_NOT_FOUND", `No such file "a.txt"`);
 * ```
 */
export class CloudError extends Error {
  /** The stable code. */
  readonly code: ErrorCode;
  /** Optional structured details. */
  readonly details: CloudErrorDetails;

  constructor(code: ErrorCode, message: string, details: CloudErrorDetails = {}) {
    super(message);
    this.name = "CloudError";
    this.code = code;
    this.details = details;
  }

  /** The CLI exit code for this error. */
  get exitCode(): number {
    return ERROR_CODES[this.code];
  }
}

/** Codes after which the server closes the connection (the stream can't be trusted). */
export const FATAL_CODES: ReadonlySet<ErrorCode> = new Set([
  "E_BAD_MAGIC",
  "E_VERSION",
  "E_BAD_FRAME",
  "E_FRAME_TOO_LARGE",
  "E_BUSY",
  "E_IDLE",
  "E_SHUTDOWN",
]);

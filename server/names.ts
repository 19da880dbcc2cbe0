/**
 * The one gate for every file or folder name that arrives from a client (SPEC.md section
 * 6). {@link validatePath} either returns a normalised relative path or throws
 * `CloudError("E_BAD_NAME")`; nothing else in the server interprets a raw name.
 *
 * Rules, and the choices made where the spec leaves room:
 * - A path is relative, "/"-separated: `a/b/c`. The root is `""`, accepted only with
 *   `allowRoot` (listing, stat). A leading "/" (absolute) is refused.
 * - One trailing "/" is tolerated and dropped, so `docs/` and `docs` are the same name.
 * - Empty segments (`a//b`), `.` and `..` segments are refused, not collapsed: a name means
 *   exactly one thing and is stored as typed.
 * - `\` is refused (a separator on Windows clients).
 * - Control characters are refused: C0 (U+0000–U+001F, NUL included), DEL (U+007F), C1
 *   (U+0080–U+009F), and the bidirectional controls (U+200E, U+200F, U+202A–U+202E,
 *   U+2066–U+2069) that make a name display as something it is not ("txt.exe" shown as
 *   "exe.txt"). Lone surrogates (text that is not well-formed Unicode) are refused too.
 * - Unicode must already be NFC. A name in another form is refused rather than silently
 *   normalised, so the name a client sends is byte for byte the name it gets back.
 * - A segment may not begin or end with a space, nor end with a dot: Windows clients
 *   silently strip those, which would make `a.` and `a` collide there. This also refuses
 *   `...`. Leading dots (`.bashrc`) and dots or spaces inside a name are fine.
 * - At most {@link MAX_SEGMENT_BYTES} UTF-8 bytes a segment, {@link MAX_PATH_BYTES} bytes
 *   in all and {@link MAX_DEPTH} segments deep.
 * - Other characters that some systems dislike (`: * ? " < > |`) are allowed; clients map
 *   them when they write local files.
 *
 * @module
 */

import { CloudError } from "../protocol/errors.ts";

/** Most UTF-8 bytes in one segment of a path (as in most file systems). */
export const MAX_SEGMENT_BYTES = 255;
/** Most UTF-8 bytes in a whole path (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** Most segments in a path (folder depth, the file included). */
export const MAX_DEPTH = 64;

/** Options of {@link validatePath}. */
export interface ValidatePathOptions {
  /** Accept `""` (the user's root folder). Default false. */
  allowRoot?: boolean;
}

const encoder = new TextEncoder();

// C0, DEL, C1 and the bidirectional formatting controls; refusing them is the point.
// deno-lint-ignore no-control-regex
const FORBIDDEN_CHAR = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
// The same, plus quote, backslash and lone surrogates: what a quoted name escapes.
const ESCAPED_CHAR =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069"\\]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const QUOTE_MAX_CHARS = 80;

/**
 * Quotes a name for a message: double quotes around it, `"` and `\` escaped, control,
 * bidirectional and lone surrogate characters shown as `\uXXXX`, and long names cut to
 * 80 characters with "…". Safe to print on a terminal or in a log line.
 *
 * @example
 * ```ts
 * quoteName("a\u0000b"); // => "\"a\\u0000b\""
 * ```
 */
export function quoteName(raw: string): string {
  let text = raw;
  let cut = false;
  if (text.length > QUOTE_MAX_CHARS) {
    text = text.slice(0, QUOTE_MAX_CHARS);
    cut = true;
  }
  const escaped = text.replace(ESCAPED_CHAR, (ch) => {
    if (ch === '"' || ch === "\\") return `\\${ch}`;
    return `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
  });
  return `"${escaped}${cut ? "…" : ""}"`;
}

function bad(raw: string, reason: string): CloudError {
  return new CloudError("E_BAD_NAME", `Name ${quoteName(raw)} ${reason}`);
}

/**
 * Validates a path from a client and returns it normalised: relative, "/"-separated, no
 * trailing "/" (`""` for the root when `allowRoot` is set). Throws
 * `CloudError("E_BAD_NAME")`, its message quoting the value safely, for anything the
 * module documentation refuses.
 *
 * @example
 * ```ts
 * validatePath("photos/2024/cat.jpg"); // => "photos/2024/cat.jpg"
 * validatePath("docs/"); // => "docs"
 * validatePath("", { allowRoot: true }); // => ""
 * validatePath("../etc/passwd"); // throws CloudError E_BAD_NAME
 * ```
 */
export function validatePath(raw: string, options: ValidatePathOptions = {}): string {
  if (typeof raw !== "string") {
    throw new CloudError("E_BAD_NAME", "A name must be a string");
  }
  if (raw === "") {
    if (options.allowRoot) return "";
    throw new CloudError("E_BAD_NAME", "A name must not be empty");
  }
  // UTF-8 never takes fewer bytes than UTF-16 code units, so this bounds the work below.
  if (raw.length > MAX_PATH_BYTES || encoder.encode(raw).length > MAX_PATH_BYTES) {
    throw bad(raw, `is longer than ${MAX_PATH_BYTES} bytes`);
  }
  if (!raw.isWellFormed()) throw bad(raw, "is not well-formed Unicode");
  if (FORBIDDEN_CHAR.test(raw)) throw bad(raw, "contains a control character");
  if (raw.includes("\\")) throw bad(raw, 'must not contain "\\"');
  if (raw.startsWith("/")) throw bad(raw, 'must be relative (no leading "/")');
  if (raw.normalize("NFC") !== raw) throw bad(raw, "is not in Unicode NFC form");

  const path = raw.endsWith("/") ? raw.slice(0, -1) : raw;
  const segments = path.split("/");
  if (segments.length > MAX_DEPTH) throw bad(raw, `is deeper than ${MAX_DEPTH} levels`);
  for (const segment of segments) {
    if (segment === "") throw bad(raw, "has an empty segment");
    if (segment === "." || segment === "..") {
      throw bad(raw, 'must not contain "." or ".." segments');
    }
    if (segment.startsWith(" ") || segment.endsWith(" ")) {
      throw bad(raw, "has a segment that begins or ends with a space");
    }
    if (segment.endsWith(".")) throw bad(raw, "has a segment that ends with a dot");
    if (encoder.encode(segment).length > MAX_SEGMENT_BYTES) {
      throw bad(raw, `has a segment longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
  }
  return path;
}

/**
 * Joins already validated paths, skipping root parts (`""`). The result is only as valid
 * as its parts: validate it again when the parts came from different places (length).
 *
 * @example
 * ```ts
 * joinPath("docs", "a.txt"); // => "docs/a.txt"
 * joinPath("", "a.txt"); // => "a.txt"
 * ```
 */
export function joinPath(...parts: string[]): string {
  return parts.filter((part) => part !== "").join("/");
}

/**
 * The folder holding a validated path: `""` (the root) for a top-level name. Throws a
 * RangeError for the root itself, which has no parent.
 *
 * @example
 * ```ts
 * parentOf("a/b/c.txt"); // => "a/b"
 * parentOf("c.txt"); // => ""
 * ```
 */
export function parentOf(path: string): string {
  if (path === "") throw new RangeError("The root folder has no parent");
  const slash = path.lastIndexOf("/");
  return slash === -1 ? "" : path.slice(0, slash);
}

/**
 * The last segment of a validated path (`""` for the root).
 *
 * @example
 * ```ts
 * baseName("a/b/c.txt"); // => "c.txt"
 * ```
 */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/**
 * True when the validated `path` is `ancestor` itself or lies inside it (every path lies
 * inside the root `""`). Compares whole segments: "ab" is not inside "a".
 *
 * @example
 * ```ts
 * isWithin("a/b", "a"); // => true
 * isWithin("ab", "a"); // => false
 * ```
 */
export function isWithin(path: string, ancestor: string): boolean {
  return ancestor === "" || path === ancestor || path.startsWith(`${ancestor}/`);
}

/**
 * Local path completion for the menu's path prompt: what a shell's Tab would offer for a
 * partly typed path, folders first, each with a short description.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { formatSize } from "../protocol/units.ts";

/** One completion of a partly typed path. */
export interface PathCandidate {
  /** The path as the user would type it (folders end with "/"). */
  path: string;
  isDir: boolean;
  /** "folder" or the file's size and modification date. */
  description: string;
}

/** Options of {@link completeLocalPath}. */
export interface CompleteOptions {
  /** Folder that relative paths start from. */
  cwd: string;
  /** Offer folders only. */
  dirsOnly?: boolean;
  /** At most this many candidates (default 200). */
  limit?: number;
  /** The home folder for "~" (default: HOME). */
  home?: string;
}

/** Expands a leading "~" or "~/" to the home folder. */
export function expandHome(path: string, home: string | undefined = Deno.env.get("HOME")): string {
  if (home === undefined) return path;
  if (path === "~") return home;
  if (path.startsWith("~/")) return join(home, path.slice(2));
  return path;
}

/** The absolute path of what the user typed, relative to `cwd`. */
export function resolveTyped(typed: string, cwd: string, home?: string): string {
  return resolve(cwd, expandHome(typed.trim(), home ?? Deno.env.get("HOME")));
}

async function statOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch {
    return null;
  }
}

function describe(info: Deno.FileInfo): string {
  if (info.isDirectory) return "folder";
  const date = info.mtime ? ` ${"·"} ${info.mtime.toISOString().slice(0, 10)}` : "";
  return `${formatSize(info.size)}${date}`;
}

/**
 * Completions of `typed`: the entries of the folder it names whose names start with
 * what follows its last "/" (case-insensitively when nothing matches exactly). Hidden
 * entries only when that part starts with ".". When `typed` itself is an existing path
 * (such as "docs/"), it comes first so it can be chosen as is.
 *
 * @example
 * ```ts
 * await completeLocalPath("do", { cwd: "/home/ada" }); // [{ path: "docs/", isDir: true, ... }]
 * ```
 */
export async function completeLocalPath(
  typed: string,
  options: CompleteOptions,
): Promise<PathCandidate[]> {
  const limit = options.limit ?? 200;
  const home = options.home ?? Deno.env.get("HOME");
  const slash = typed.lastIndexOf("/");
  const dirPart = slash === -1 ? "" : typed.slice(0, slash + 1);
  const prefix = slash === -1 ? typed : typed.slice(slash + 1);
  const dir = resolve(options.cwd, expandHome(dirPart === "" ? "." : dirPart, home));

  const out: PathCandidate[] = [];
  if (typed !== "") {
    const exact = await statOrNull(resolve(options.cwd, expandHome(typed, home)));
    if (exact && (exact.isDirectory || !options.dirsOnly)) {
      const path = exact.isDirectory && !typed.endsWith("/") ? `${typed}/` : typed;
      if (exact.isDirectory || prefix !== "") {
        out.push({ path, isDir: exact.isDirectory, description: describe(exact) });
      }
    }
  }

  const entries: Deno.DirEntry[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) entries.push(entry);
  } catch {
    return out;
  }
  const visible = entries.filter((e) => prefix.startsWith(".") || !e.name.startsWith("."));
  let matching = visible.filter((e) => e.name.startsWith(prefix));
  if (matching.length === 0) {
    const lower = prefix.toLowerCase();
    matching = visible.filter((e) => e.name.toLowerCase().startsWith(lower));
  }
  const found: PathCandidate[] = [];
  for (const entry of matching) {
    const info = entry.isSymlink ? await statOrNull(join(dir, entry.name)) : null;
    const isDir = entry.isDirectory || (info?.isDirectory ?? false);
    if (options.dirsOnly && !isDir) continue;
    const full = info ?? await statOrNull(join(dir, entry.name));
    if (!full) continue;
    found.push({
      path: `${dirPart}${entry.name}${isDir ? "/" : ""}`,
      isDir,
      description: describe(full),
    });
    if (found.length >= limit) break;
  }
  found.sort((a, b) => a.isDir === b.isDir ? a.path.localeCompare(b.path) : a.isDir ? -1 : 1);
  for (const candidate of found) {
    if (!out.some((o) => o.path === candidate.path)) out.push(candidate);
  }
  return out.slice(0, limit);
}

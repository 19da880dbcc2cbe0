/**
 * Remote paths as the menu shows and types them, and the remote browser that Download,
 * Delete and Rename share: folders open, ".." goes up, the session remembers the folder.
 *
 * @module
 */

import { CloudError } from "../protocol/errors.ts";
import type { Entry } from "../protocol/messages.ts";
import { formatSize } from "../protocol/units.ts";
import type { MenuContext } from "./menu_context.ts";
import type { MenuChoice } from "./menu_prompts.ts";
import { formatLocalTime, okLine, sortEntries } from "./menu_view.ts";

/**
 * Resolves what the user typed as a remote path: from the root when it starts with "/",
 * else from `base`; "." and ".." are applied here. Returns the path without slashes at
 * either end ("" is the root).
 *
 * @example
 * ```ts
 * remoteResolve("docs", "2024/../x"); // "docs/x"
 * remoteResolve("docs", "/photos/"); // "photos"
 * ```
 */
export function remoteResolve(base: string, typed: string): string {
  const text = typed.trim();
  const parts = text.startsWith("/") ? [] : base.split("/").filter((p) => p !== "");
  for (const segment of text.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") parts.pop();
    else parts.push(segment);
  }
  return parts.join("/");
}

/** The parent of a remote path ("" for top-level names and the root). */
export function remoteParent(path: string): string {
  const at = path.lastIndexOf("/");
  return at === -1 ? "" : path.slice(0, at);
}

/** A remote path as shown: "/docs/a.txt". */
export function showRemote(path: string): string {
  return `/${path}`;
}

/** The entries of a remote folder. */
export async function listRemote(ctx: MenuContext, dir: string): Promise<Entry[]> {
  return await ctx.session.use((c) => c.list(dir));
}

type BrowseValue =
  | { kind: "up" }
  | { kind: "self" }
  | { kind: "dir"; entry: Entry }
  | { kind: "file"; entry: Entry };

/** What the remote browser returned: a path and whether it is a folder. */
export interface Picked {
  path: string;
  isDir: boolean;
  entry: Entry | null;
}

/**
 * Lets the user walk the remote folders and pick a file (`files`) or any entry
 * (`entries`: a folder is opened, and "this folder" picks it). Starts in, and keeps
 * following, the session's current folder.
 */
export async function browseRemote(
  ctx: MenuContext,
  options: { message: string; pick: "files" | "entries" },
): Promise<Picked> {
  const { style, session, prompter } = ctx;
  for (let steps = 0; steps < 10_000; steps++) {
    const dir = session.remoteDir;
    let entries: Entry[];
    try {
      entries = sortEntries(await listRemote(ctx, dir));
    } catch (error) {
      if (error instanceof CloudError && error.code === "E_NOT_FOUND" && dir !== "") {
        session.remoteDir = remoteParent(dir);
        continue;
      }
      throw error;
    }
    const choices: MenuChoice<BrowseValue>[] = [];
    if (dir !== "") {
      choices.push({
        name: style.dim(`${style.symbols.up} ..`),
        value: { kind: "up" },
        description: `up to ${showRemote(remoteParent(dir))}`,
      });
      if (options.pick === "entries") {
        choices.push({
          name: `${style.symbols.bullet} this folder (${showRemote(dir)})`,
          value: { kind: "self" },
          description: `choose the folder ${showRemote(dir)} itself`,
        });
      }
    }
    const width = Math.min(48, Math.max(8, ...entries.map((e) => [...e.name].length + 1)));
    for (const entry of entries) {
      if (entry.type === "dir") {
        choices.push({
          name: style.blue(`${entry.name}/`),
          value: { kind: "dir", entry },
          description: `folder ${style.symbols.separator} open it`,
        });
      } else {
        const name = [...entry.name].length > width
          ? `${[...entry.name].slice(0, width - 1).join("")}…`
          : entry.name;
        choices.push({
          name: `${name.padEnd(width)} ${formatSize(entry.size).padStart(10)}`,
          value: { kind: "file", entry },
          description: `${formatSize(entry.size)} ${style.symbols.separator} modified ${
            formatLocalTime(entry.modified)
          }`,
        });
      }
    }
    if (options.pick === "files" && !entries.some((e) => e.type === "file")) {
      if (dir === "" && entries.length === 0) {
        throw new CloudError("E_NOT_FOUND", "There are no files yet: upload some first");
      }
      choices.push({ name: "(no files here)", value: { kind: "up" }, disabled: true });
    }
    if (choices.length === 0) throw new CloudError("E_NOT_FOUND", "There is nothing here yet");
    // The cursor starts on the first file (or folder), not on "..".
    const first = choices.find((c) =>
      !c.disabled && (c.value.kind === "file" || c.value.kind === "dir")
    );
    const value = await prompter.select<BrowseValue>({
      message: `${options.message} ${style.dim(showRemote(dir))}`,
      choices,
      ...(first ? { default: first.value } : {}),
      echo: false,
    });
    let picked: Picked | null = null;
    switch (value.kind) {
      case "up":
        session.remoteDir = remoteParent(dir);
        break;
      case "dir":
        session.remoteDir = dir === "" ? value.entry.name : `${dir}/${value.entry.name}`;
        break;
      case "self":
        picked = { path: dir, isDir: true, entry: null };
        break;
      case "file":
        picked = {
          path: dir === "" ? value.entry.name : `${dir}/${value.entry.name}`,
          isDir: false,
          entry: value.entry,
        };
    }
    if (picked !== null) {
      ctx.out.line(
        okLine(style, `${style.bold(options.message)} ${style.cyan(showRemote(picked.path))}`),
      );
      return picked;
    }
  }
  throw new Error("Browsing did not settle");
}

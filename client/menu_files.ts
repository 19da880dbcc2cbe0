/**
 * File actions of the menu: upload, download, list, delete, rename, make folder.
 * Transfers show a progress bar; Ctrl-C cancels them cleanly (see MenuSession.transfer in
 * menu_session.ts); the remote browser lives in menu_browse.ts.
 *
 * @module
 */

import { basename, join } from "node:path";
import { CloudError } from "../protocol/errors.ts";
import type { Entry } from "../protocol/messages.ts";
import { formatSize } from "../protocol/units.ts";
import type { CloudClient } from "./client.ts";
import { collectUploads } from "./file_commands.ts";
import type { ActionId, MenuContext } from "./menu_context.ts";
import { resolveTyped } from "./menu_paths.ts";
import {
  browseRemote,
  listRemote,
  remoteParent,
  remoteResolve,
  showRemote,
} from "./menu_browse.ts";
import { type MenuChoice, PromptCancelled } from "./menu_prompts.ts";
import { errorLine, listingTable, okLine, sortEntries, warnLine } from "./menu_view.ts";
import {
  downloadFile,
  partialPathFor,
  type TransferResult,
  uploadFiles,
  type UploadItem,
} from "./transfer.ts";

async function localInfo(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.stat(path);
  } catch {
    return null;
  }
}

async function uploadBatch(
  ctx: MenuContext,
  items: UploadItem[],
  overwrite: boolean,
): Promise<{ results: TransferResult[]; cancelled: boolean }> {
  const results: TransferResult[] = [];
  const outcome = await ctx.session.transfer(
    (client: CloudClient) =>
      uploadFiles(client, items, {
        overwrite,
        progress: ctx.progress(),
        onResult: (result) => {
          results.push(result);
          if (result.ok && result.resumedAt) {
            ctx.out.line(
              ctx.style.dim(
                `Resumed ${basename(result.item)} from ${formatSize(result.resumedAt)}`,
              ),
            );
          }
        },
      }),
    ctx.interrupts,
  );
  return { results, cancelled: outcome.cancelled };
}

/**
 * Upload: pick local files and folders (Tab completes), choose the remote folder (the
 * one being browsed by default), send with a progress bar; offers to replace files that
 * already exist.
 */
export async function uploadAction(ctx: MenuContext): Promise<ActionId | void> {
  const { prompter, out, style, session } = ctx;
  const picks: string[] = [];
  for (let more = true; more && picks.length < 1000;) {
    const typed = await prompter.path({
      message: picks.length === 0 ? "File or folder to upload" : "Another file or folder",
      cwd: ctx.cwd,
      validate: async (value) => {
        if (value.trim() === "") return "Type a path";
        const info = await localInfo(resolveTyped(value, ctx.cwd));
        if (info === null) return `No such file or folder "${value}"`;
        if (!info.isFile && !info.isDirectory) return `"${value}" is not a file or folder`;
        return null;
      },
    });
    const absolute = resolveTyped(typed, ctx.cwd);
    if (!picks.includes(absolute)) picks.push(absolute);
    more = await prompter.confirm({ message: "Add another file or folder?", default: false });
  }
  const target = remoteResolve(
    "",
    await prompter.input({
      message: "Upload to remote folder",
      default: session.folderLabel,
      validate: (value) => (value.trim() === "" ? "Type a folder, / for the top" : null),
    }),
  );
  const items = await collectUploads(picks, target);
  if (items.length === 0) {
    out.line(warnLine(style, "Nothing to upload: the folders chosen are empty"));
    return;
  }
  let total = 0;
  for (const item of items) total += (await localInfo(item.local))?.size ?? 0;
  out.line(
    style.dim(
      `${items.length} file${items.length === 1 ? "" : "s"}, ${formatSize(total)} ${
        style.unicode ? "→" : "->"
      } ${showRemote(target)}  (Ctrl-C cancels)`,
    ),
  );

  if (total >= 256 * 1024 * 1024) out.line(style.dim("Computing checksums first…"));
  let batch = await uploadBatch(ctx, items, false);
  const done = () => batch.results.filter((r) => r.ok).length;
  let uploaded = done();
  if (batch.cancelled) {
    out.line(
      `\r${warnLine(style, `Upload cancelled; ${uploaded} of ${items.length} files had finished`)}`,
    );
    return;
  }
  const existing = batch.results.filter((r) => !r.ok && r.error.code === "E_EXISTS");
  for (const failure of batch.results) {
    if (!failure.ok && failure.error.code !== "E_EXISTS") {
      out.line(
        errorLine(
          style,
          new CloudError(failure.error.code, `${failure.item}: ${failure.error.message}`),
        ),
      );
    }
  }
  if (existing.length > 0) {
    const names = existing.slice(0, 3).map((r) => basename(r.item)).join(", ");
    const replace = await prompter.confirm({
      message: `${
        existing.length === 1
          ? `"${names}" already exists`
          : `${existing.length} files already exist (${names}${existing.length > 3 ? ", …" : ""})`
      } in ${showRemote(target)}. Replace?`,
      default: false,
    });
    if (replace) {
      const again = items.filter((item) => existing.some((r) => r.item === item.local));
      batch = await uploadBatch(ctx, again, true);
      if (batch.cancelled) {
        out.line(`\r${warnLine(style, "Upload cancelled")}`);
        return;
      }
      for (const failure of batch.results) {
        if (!failure.ok) out.line(errorLine(style, failure.error));
      }
      uploaded += done();
    }
  }
  if (uploaded > 0) {
    out.line(okLine(
      style,
      `Uploaded ${uploaded} of ${items.length} file${items.length === 1 ? "" : "s"} to ${
        showRemote(target)
      }`,
    ));
  }
}

/** Download: pick a remote file (folders open), choose a local folder, save with a progress bar. */
export async function downloadAction(ctx: MenuContext): Promise<ActionId | void> {
  const { prompter, out, style, session } = ctx;
  const picked = await browseRemote(ctx, { message: "Download which file?", pick: "files" });
  const typedDir = await prompter.path({
    message: "Save to local folder",
    cwd: ctx.cwd,
    dirsOnly: true,
    initial: { name: "./", value: ".", description: `the current folder (${ctx.cwd})` },
    validate: async (value) => {
      const info = await localInfo(resolveTyped(value === "" ? "." : value, ctx.cwd));
      if (info === null) return `No such folder "${value}"`;
      return info.isDirectory ? null : `"${value}" is not a folder`;
    },
  });
  const target = join(
    resolveTyped(typedDir === "" ? "." : typedDir, ctx.cwd),
    basename(picked.path),
  );
  let overwrite = false;
  if ((await localInfo(target)) !== null) {
    overwrite = await prompter.confirm({
      message: `"${target}" exists. Replace it?`,
      default: false,
    });
    if (!overwrite) {
      out.line(style.dim("Kept the existing file"));
      return;
    }
  }
  out.line(
    style.dim(
      `${showRemote(picked.path)} ${style.unicode ? "→" : "->"} ${target}  (Ctrl-C cancels)`,
    ),
  );
  const outcome = await session.transfer(
    (client, signal) =>
      downloadFile(client, picked.path, target, {
        overwrite,
        progress: ctx.progress(),
        signal,
        keepPartial: false,
      }),
    ctx.interrupts,
  );
  if (outcome.cancelled) {
    const partial = partialPathFor(target);
    await Deno.remove(partial).catch(() => {});
    await Deno.remove(`${partial}.json`).catch(() => {});
    out.line(`\r${warnLine(style, "Download cancelled; nothing was kept")}`);
    return;
  }
  out.line(
    okLine(
      style,
      `Downloaded ${basename(picked.path)} (${formatSize(outcome.value.size)}) to ${target}`,
    ),
  );
}

/** List: the current folder as a table, then lets the user open another folder. */
export async function listAction(ctx: MenuContext): Promise<ActionId | void> {
  const { prompter, out, style, session } = ctx;
  for (let steps = 0; steps < 10_000; steps++) {
    const dir = session.remoteDir;
    let entries: Entry[];
    try {
      entries = await listRemote(ctx, dir);
    } catch (error) {
      if (error instanceof CloudError && error.code === "E_NOT_FOUND" && dir !== "") {
        session.remoteDir = remoteParent(dir);
        continue;
      }
      throw error;
    }
    out.line(style.bold(`Contents of ${showRemote(dir)}`));
    for (const line of listingTable(style, entries)) out.line(line);
    try {
      const df = await session.use((c) => c.call({ t: "df" }));
      const quota = df.quota === null
        ? "no quota"
        : `quota ${formatSize(df.quota)}, ${
          (df.used / Math.max(df.quota, 1) * 100).toFixed(0)
        }% used`;
      out.line(
        style.dim(
          `  ${formatSize(df.used)} in ${df.files} file${df.files === 1 ? "" : "s"} (${quota})`,
        ),
      );
    } catch (error) {
      if (!(error instanceof CloudError)) throw error;
    }
    const folders = sortEntries(entries).filter((e) => e.type === "dir");
    if (folders.length === 0 && dir === "") return;
    const choices: MenuChoice<string | null>[] = [{ name: "Back to the menu", value: null }];
    if (dir !== "") {
      choices.push({
        name: `${style.symbols.up} .. (${showRemote(remoteParent(dir))})`,
        value: remoteParent(dir),
      });
    }
    for (const folder of folders) {
      choices.push({
        name: style.blue(`${folder.name}/`),
        value: dir === "" ? folder.name : `${dir}/${folder.name}`,
      });
    }
    let next: string | null = null;
    try {
      next = await prompter.select<string | null>({
        message: "Open a folder?",
        choices,
        default: null,
        echo: false,
      });
    } catch (error) {
      // Esc here means "back", not "cancelled".
      if (!(error instanceof PromptCancelled && error.how === "escape")) throw error;
    }
    if (next === null) return;
    session.remoteDir = next;
  }
}

/** Delete: pick a file or folder, confirm (a folder's contents are counted), remove. */
export async function deleteAction(ctx: MenuContext): Promise<ActionId | void> {
  const { prompter, out, style, session } = ctx;
  const picked = await browseRemote(ctx, { message: "Delete what?", pick: "entries" });
  if (picked.path === "") throw new CloudError("E_INVALID", "The top folder cannot be deleted");
  let message = `Delete ${showRemote(picked.path)}? This cannot be undone`;
  let recursive = false;
  if (picked.isDir) {
    const inside = await listRemote(ctx, picked.path);
    recursive = inside.length > 0;
    message = recursive
      ? `Delete the folder ${showRemote(picked.path)} and the ${inside.length} item${
        inside.length === 1 ? "" : "s"
      } in it? This cannot be undone`
      : `Delete the empty folder ${showRemote(picked.path)}?`;
  }
  if (!(await prompter.confirm({ message, default: false }))) {
    out.line(style.dim("Nothing deleted"));
    return;
  }
  await session.use((c) => c.call({ t: "rm", path: picked.path, recursive }));
  if (session.remoteDir === picked.path || session.remoteDir.startsWith(`${picked.path}/`)) {
    session.remoteDir = remoteParent(picked.path);
  }
  out.line(okLine(style, `Deleted ${showRemote(picked.path)}`));
}

/** Rename (or move): pick an entry, type the new name or a path from "/", confirm. */
export async function renameAction(ctx: MenuContext): Promise<ActionId | void> {
  const { prompter, out, style, session } = ctx;
  const picked = await browseRemote(ctx, { message: "Rename what?", pick: "entries" });
  if (picked.path === "") throw new CloudError("E_INVALID", "The top folder cannot be renamed");
  const from = picked.path;
  const parent = remoteParent(from);
  const typed = await prompter.input({
    message: "New name (or a path from /)",
    default: basename(from),
    editable: true,
    validate: (value) => {
      const to = remoteResolve(parent, value);
      if (to === "") return "Type a name";
      if (to === from) return "That is the current name";
      if (to.startsWith(`${from}/`)) return "A folder cannot move into itself";
      return null;
    },
  });
  const to = remoteResolve(parent, typed);
  const sure = await prompter.confirm({
    message: `Rename ${showRemote(from)} to ${showRemote(to)}?`,
    default: true,
  });
  if (!sure) {
    out.line(style.dim("Nothing renamed"));
    return;
  }
  try {
    await session.use((c) => c.call({ t: "mv", from, to, overwrite: false }));
  } catch (error) {
    if (!(error instanceof CloudError && error.code === "E_EXISTS") || picked.isDir) throw error;
    const replace = await prompter.confirm({
      message: `${showRemote(to)} already exists. Replace it?`,
      default: false,
    });
    if (!replace) {
      out.line(style.dim("Nothing renamed"));
      return;
    }
    await session.use((c) => c.call({ t: "mv", from, to, overwrite: true }));
  }
  if (session.remoteDir === from || session.remoteDir.startsWith(`${from}/`)) {
    session.remoteDir = to + session.remoteDir.slice(from.length);
  }
  out.line(okLine(style, `Renamed ${showRemote(from)} to ${showRemote(to)}`));
}

/** Make folder: a name in the current folder (or a path from "/"); parents are created. */
export async function mkdirAction(ctx: MenuContext): Promise<ActionId | void> {
  const { prompter, out, style, session } = ctx;
  const base = session.remoteDir;
  const typed = await prompter.input({
    message: `New folder in ${showRemote(base)} (or a path from /)`,
    validate: (value) => (remoteResolve(base, value) === "" ? "Type a folder name" : null),
  });
  const path = remoteResolve(base, typed);
  await session.use((c) => c.call({ t: "mkdir", path, parents: true }));
  out.line(okLine(style, `Created ${showRemote(path)}`));
}

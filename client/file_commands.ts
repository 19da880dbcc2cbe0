/**
 * File commands of `cloud connect`: ls, put, get, rm, mv, mkdir, df.
 *
 * @module
 */

import { basename, join, relative, resolve } from "node:path";
import { CloudError, EXIT } from "../protocol/errors.ts";
import type { Entry } from "../protocol/messages.ts";
import { formatSize } from "../protocol/units.ts";
import type { CloudClient } from "./client.ts";
import type { Command, CommandIo } from "./io.ts";
import { type ConnectOptions, getEmail, getPassword } from "./options.ts";
import { terminalProgress } from "./progress.ts";
import { downloadFiles, type DownloadItem, uploadFiles, type UploadItem } from "./transfer.ts";

async function login(client: CloudClient, options: ConnectOptions): Promise<void> {
  await client.login(await getEmail(options), await getPassword(options));
}

/** Joins remote path parts with "/", dropping empty ones. */
export function remoteJoin(...parts: string[]): string {
  return parts.flatMap((p) => p.split("/")).filter((p) => p !== "").join("/");
}

function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 16);
}

/** Formats a listing as aligned columns: type, size, modified, name. */
export function formatListing(entries: Entry[]): string[] {
  const sorted = [...entries].sort((a, b) =>
    a.type === b.type ? a.name.localeCompare(b.name) : a.type === "dir" ? -1 : 1
  );
  const sizes = sorted.map((e) => (e.type === "dir" ? "-" : formatSize(e.size)));
  const width = Math.max(4, ...sizes.map((s) => s.length));
  return sorted.map((e, i) =>
    `${e.type === "dir" ? "d" : "-"}  ${sizes[i]!.padStart(width)}  ${
      formatTime(e.modified)
    }  ${e.name}${e.type === "dir" ? "/" : ""}`
  );
}

/** Expands local arguments into files to upload: folders are walked, keeping structure. */
export async function collectUploads(locals: string[], remoteDir: string): Promise<UploadItem[]> {
  const items: UploadItem[] = [];
  for (const local of locals) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(local);
    } catch {
      throw new CloudError("E_NOT_FOUND", `No such local file "${local}"`);
    }
    const base = basename(resolve(local));
    if (info.isFile) {
      items.push({ local, remote: remoteJoin(remoteDir, base) });
    } else if (info.isDirectory) {
      const walk = async (dir: string) => {
        const names: Deno.DirEntry[] = [];
        for await (const entry of Deno.readDir(dir)) names.push(entry);
        names.sort((a, b) => a.name.localeCompare(b.name));
        for (const entry of names) {
          const path = join(dir, entry.name);
          if (entry.isDirectory) await walk(path);
          else if (entry.isFile) {
            const rel = relative(local, path).split(/[\\/]/).join("/");
            items.push({ local: path, remote: remoteJoin(remoteDir, base, rel) });
          }
        }
      };
      await walk(local);
    } else {
      throw new CloudError("E_NOT_FOUND", `"${local}" is not a file or folder`);
    }
  }
  return items;
}

/** True when `path` is an existing local folder. */
function isLocalDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/** The exit code of the first failure among results, or 0. */
function worstExit(errors: CloudError[]): number {
  return errors.length === 0 ? EXIT.OK : errors[0]!.exitCode;
}

function describeError(io: CommandIo, what: string, error: CloudError) {
  io.err(`cloud: ${what}: ${error.message}`);
}

/**
 * What each command needs, checked before connecting: a usage error is exit 2 whether or
 * not the server answers. Returns the problem, or null.
 */
export const ARGUMENT_RULES: Record<
  string,
  (args: string[], options: ConnectOptions) => string | null
> = {
  register: (args, options) =>
    !options.name || !options.phone
      ? "register needs --name NAME and --phone PHONE"
      : args.length > 0
      ? "register takes no arguments"
      : null,
  login: (args) => (args.length > 0 ? "login takes no arguments" : null),
  whoami: (args) => (args.length > 0 ? "whoami takes no arguments" : null),
  passwd: (args) => (args.length > 0 ? "passwd takes no arguments" : null),
  ls: (args) => (args.length > 1 ? "ls takes at most one folder" : null),
  put: (args) => (args.length === 0 ? "put needs at least one local file or folder" : null),
  get: (args) => (args.length === 0 ? "get needs at least one remote file or folder" : null),
  rm: (args) => (args.length === 0 ? "rm needs at least one remote path" : null),
  mv: (args) => (args.length !== 2 ? "mv needs FROM and TO" : null),
  mkdir: (args) => (args.length === 0 ? "mkdir needs a folder name" : null),
  df: (args) => (args.length > 0 ? "df takes no arguments" : null),
};

/** The file commands of `cloud connect`. */
export const fileCommands: Record<string, Command> = {
  ls: async (client, args, options, io) => {
    await login(client, options);
    const entries = await client.list(args[0] ?? "");
    if (options.json) io.out(JSON.stringify(entries));
    else for (const line of formatListing(entries)) io.out(line);
    return 0;
  },

  put: async (client, args, options, io) => {
    const items = await collectUploads(args, options.to ?? "");
    await login(client, options);
    const errors: CloudError[] = [];
    const progress = terminalProgress();
    await uploadFiles(client, items, {
      overwrite: options.overwrite ?? false,
      progress,
      onResult: (result) => {
        if (!result.ok) {
          errors.push(result.error);
          describeError(io, result.item, result.error);
        } else if (result.resumedAt) {
          io.err(`Resumed "${result.item}" at byte ${result.resumedAt}`);
        }
      },
    });
    if (items.length > 1 || errors.length > 0) {
      io.err(`Uploaded ${items.length - errors.length} of ${items.length} files`);
    }
    return worstExit(errors);
  },

  get: async (client, args, options, io) => {
    const outDir = options.out ?? ".";
    await Deno.mkdir(outDir, { recursive: true });
    await login(client, options);
    const errors: CloudError[] = [];
    const fail = (what: string, error: CloudError) => {
      errors.push(error);
      describeError(io, what, error);
    };
    const progress = terminalProgress();
    const overwrite = options.overwrite ?? false;
    // Every argument is tried as a file first, all pipelined; the ones that turn out to be
    // folders come down afterwards with everything in them, like `sftp get -r`.
    const folders: (DownloadItem & { error?: CloudError })[] = [];
    const fetch = (items: DownloadItem[], firstPass: boolean) =>
      downloadFiles(client, items, {
        overwrite,
        progress,
        onResult: (result) => {
          if (result.ok) {
            if (result.resumedAt) io.err(`Resumed "${result.item}" at byte ${result.resumedAt}`);
            return;
          }
          const item = items.find((i) => i.remote === result.item)!;
          const maybeFolder = result.error.code === "E_CONFLICT" ||
            (result.error.code === "E_EXISTS" && isLocalDir(item.target));
          if (firstPass && maybeFolder) folders.push({ ...item, error: result.error });
          else fail(result.item, result.error);
        },
      });
    const files: DownloadItem[] = [];
    for (const remote of args) {
      const name = basename(remote.replace(/\/+$/, ""));
      if (name === "") folders.push({ remote: "", target: outDir });
      else files.push({ remote, target: join(outDir, name) });
    }
    await fetch(files, true);
    const inside: DownloadItem[] = [];
    const expand = async (remote: string, target: string): Promise<boolean> => {
      let entries: Entry[];
      try {
        entries = await client.list(remote);
      } catch (error) {
        if (!(error instanceof CloudError) || error.code !== "E_CONFLICT") throw error;
        return false; // a file after all
      }
      await Deno.mkdir(target, { recursive: true });
      for (const entry of entries) {
        const child = remoteJoin(remote, entry.name);
        if (entry.type === "dir") await expand(child, join(target, entry.name));
        else inside.push({ remote: child, target: join(target, entry.name) });
      }
      return true;
    };
    for (const folder of folders) {
      try {
        if (!(await expand(folder.remote, folder.target)) && folder.error) {
          fail(folder.remote, folder.error);
        }
      } catch (error) {
        if (!(error instanceof CloudError)) throw error;
        fail(folder.remote, error);
      }
    }
    await fetch(inside, false);
    return worstExit(errors);
  },

  rm: async (client, args, options, io) => {
    await login(client, options);
    const errors: CloudError[] = [];
    for (const path of args) {
      try {
        await client.call({ t: "rm", path, recursive: options.recursive ?? false });
      } catch (error) {
        if (!(error instanceof CloudError)) throw error;
        errors.push(error);
        const hint = /not empty/.test(error.message) && !options.recursive ? " (use -r)" : "";
        io.err(`cloud: ${path}: ${error.message}${hint}`);
      }
    }
    return worstExit(errors);
  },

  mv: async (client, args, options) => {
    await login(client, options);
    await client.call({
      t: "mv",
      from: args[0]!,
      to: args[1]!,
      overwrite: options.overwrite ?? false,
    });
    return 0;
  },

  mkdir: async (client, args, options) => {
    await login(client, options);
    for (const path of args) {
      try {
        await client.call({ t: "mkdir", path, parents: options.parents ?? false });
      } catch (error) {
        if (error instanceof CloudError && error.code === "E_NOT_FOUND" && !options.parents) {
          throw new CloudError(error.code, `${error.message} (use -p to create it)`);
        }
        throw error;
      }
    }
    return 0;
  },

  df: async (client, _args, options, io) => {
    await login(client, options);
    const df = await client.call({ t: "df" });
    if (options.json) {
      io.out(JSON.stringify(df));
    } else {
      const quota = df.quota === null ? "unlimited" : formatSize(df.quota);
      const percent = df.quota ? ` (${((df.used / df.quota) * 100).toFixed(1)}%)` : "";
      io.out(`${formatSize(df.used)} used of ${quota}${percent} in ${df.files} files`);
    }
    return 0;
  },
};

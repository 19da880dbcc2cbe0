/**
 * What the menu prints: the header line, listings as a table, errors as one red line.
 * Pure functions of their inputs (and the clock passed in).
 *
 * @module
 */

import { CloudError } from "../protocol/errors.ts";
import type { Entry } from "../protocol/messages.ts";
import { formatSize } from "../protocol/units.ts";
import { stripAnsi, type Style } from "./style.ts";

/** What the header shows. */
export interface HeaderState {
  serverName: string;
  address: string;
  email: string | null;
  folder: string;
}

/**
 * The header line: server, who is logged in, and the remote folder.
 *
 * @example
 * ```ts
 * header(style, { serverName: "nas", address: "10.0.0.2:7070", email: null, folder: "/" });
 * // "cloud · nas (10.0.0.2:7070) · not logged in"
 * ```
 */
export function header(style: Style, state: HeaderState): string {
  const sep = style.dim(` ${style.symbols.separator} `);
  const server = `${style.bold(state.serverName)} ${style.dim(`(${state.address})`)}`;
  const who = state.email === null ? style.yellow("not logged in") : style.green(state.email);
  const parts = [style.cyan(style.bold("cloud")), server, who];
  if (state.email !== null) parts.push(style.blue(state.folder));
  return parts.join(sep);
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** A time as `YYYY-MM-DD HH:MM` in the local time zone. */
export function formatLocalTime(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ` +
    `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
}

/** "in 3 min", "in 2 h 5 min", "in 40 s". */
export function formatWait(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  if (seconds < 60) return `in ${seconds} s`;
  const minutes = Math.ceil(seconds / 60);
  if (minutes < 60) return `in ${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  return rest === 0 ? `in ${hours} h` : `in ${hours} h ${rest} min`;
}

function truncate(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : `${chars.slice(0, width - 1).join("")}…`;
}

function padEnd(text: string, width: number): string {
  return text + " ".repeat(Math.max(0, width - [...stripAnsi(text)].length));
}

/** Sorts folders first, then by name. */
export function sortEntries(entries: Entry[]): Entry[] {
  return [...entries].sort((a, b) =>
    a.type === b.type ? a.name.localeCompare(b.name) : a.type === "dir" ? -1 : 1
  );
}

/**
 * A listing as a table: name, size in human units, modified (local time), folders first,
 * then a summary line. An empty folder says so.
 */
export function listingTable(style: Style, entries: Entry[], maxNameWidth = 48): string[] {
  if (entries.length === 0) return [style.dim("  (empty folder)")];
  const sorted = sortEntries(entries);
  const names = sorted.map((e) => truncate(e.type === "dir" ? `${e.name}/` : e.name, maxNameWidth));
  const sizes = sorted.map((e) => (e.type === "dir" ? "-" : formatSize(e.size)));
  const nameWidth = Math.max(4, ...names.map((n) => [...n].length));
  const sizeWidth = Math.max(4, ...sizes.map((s) => s.length));
  const lines = [
    style.dim(`  ${padEnd("Name", nameWidth)}  ${"Size".padStart(sizeWidth)}  Modified`),
  ];
  sorted.forEach((entry, i) => {
    const name = entry.type === "dir" ? style.blue(style.bold(names[i]!)) : names[i]!;
    lines.push(
      `  ${padEnd(name, nameWidth)}  ${sizes[i]!.padStart(sizeWidth)}  ${
        formatLocalTime(entry.modified)
      }`,
    );
  });
  const folders = sorted.filter((e) => e.type === "dir").length;
  const files = sorted.length - folders;
  const bytes = sorted.reduce((sum, e) => sum + (e.type === "file" ? e.size : 0), 0);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  lines.push(
    style.dim(`  ${plural(folders, "folder")}, ${plural(files, "file")}, ${formatSize(bytes)}`),
  );
  return lines;
}

/** The user-facing text of an error, with lock times in local time. */
export function errorText(error: unknown, now: number = Date.now()): string {
  if (error instanceof CloudError) {
    const retryAt = error.details.retryAt ? Date.parse(error.details.retryAt) : NaN;
    if ((error.code === "E_LOCKED" || error.code === "E_BLOCKED") && !Number.isNaN(retryAt)) {
      const what = error.code === "E_LOCKED"
        ? "Too many failed logins: this account is locked"
        : "Too many failed logins from this address: it is blocked";
      const at = formatLocalTime(retryAt);
      const when = at.slice(0, 10) === formatLocalTime(now).slice(0, 10) ? at.slice(11) : at;
      return `${what}; try again at ${when} (${formatWait(retryAt - now)})`;
    }
    return error.message;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

/** An error as one red line. */
export function errorLine(style: Style, error: unknown, now?: number): string {
  return style.red(`${style.symbols.error} ${errorText(error, now)}`);
}

/** A success as one green line. */
export function okLine(style: Style, text: string): string {
  return `${style.green(style.symbols.ok)} ${text}`;
}

/** A notice as one yellow line. */
export function warnLine(style: Style, text: string): string {
  return style.yellow(`${style.symbols.warning} ${text}`);
}

/** A loud, boxed refusal (a server whose certificate changed). */
export function alarm(style: Style, title: string, text: string): string[] {
  const bar = style.unicode ? "━".repeat(72) : "=".repeat(72);
  return [
    style.red(bar),
    style.red(style.bold(`${style.symbols.warning}  ${title}`)),
    ...text.split("\n").map((line) => style.red(line)),
    style.red(bar),
  ];
}

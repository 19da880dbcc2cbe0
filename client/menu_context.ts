/**
 * What every menu action works with: the session, the prompter, where to print, the
 * style, the local folder, progress bars and Ctrl-C during transfers. Tests build one
 * with a scripted prompter and a collecting output.
 *
 * @module
 */

import type { Prompter } from "./menu_prompts.ts";
import type { InterruptSource, MenuSession } from "./menu_session.ts";
import type { Style } from "./style.ts";
import type { ProgressSink } from "./transfer.ts";

/** Where the menu prints (the terminal's stderr, or a list in tests). */
export interface MenuOutput {
  line(text?: string): void;
}

/** The identifiers of the main menu's entries. */
export type ActionId =
  | "register"
  | "login"
  | "upload"
  | "download"
  | "list"
  | "delete"
  | "rename"
  | "mkdir"
  | "passwd"
  | "logout"
  | "quit";

/** Everything an action needs. */
export interface MenuContext {
  session: MenuSession;
  prompter: Prompter;
  out: MenuOutput;
  style: Style;
  /** The local folder that relative paths start from (and downloads default to). */
  cwd: string;
  /** A fresh progress display for a transfer. */
  progress(): ProgressSink;
  /** Ctrl-C during transfers. */
  interrupts: InterruptSource;
  /** The clock, for lock times. */
  now(): number;
}

/** One entry of the main menu. An action may suggest where the cursor goes next. */
export interface MenuAction {
  id: ActionId;
  label: string;
  description: string;
  /** Disabled until someone logs in. */
  needsLogin: boolean;
  run(ctx: MenuContext): Promise<ActionId | void>;
}

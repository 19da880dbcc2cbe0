/**
 * `cloud connect` with no COMMAND: the interactive menu (SPEC section 2). Connects (with
 * trust on first use, or discovery when no `--host`), then loops on an arrow-key menu —
 * Register, Log in, Upload, Download, List, Delete, Rename, Make folder, Change password,
 * Log out, Quit — under a header naming the server and who is logged in. Errors show as
 * one red line and the menu comes back; Esc or Ctrl-C at the menu quits with 0.
 *
 * Everything it talks to is injectable ({@link MenuDeps}) so tests drive it with
 * scripted answers and no terminal.
 *
 * @module
 */

import process from "node:process";
import { CloudError, EXIT } from "../protocol/errors.ts";
import { openClient } from "./commands.ts";
import type { CommandIo } from "./io.ts";
import { loginAction, logoutAction, passwdAction, registerAction } from "./menu_account.ts";
import type { ActionId, MenuAction, MenuContext, MenuOutput } from "./menu_context.ts";
import {
  deleteAction,
  downloadAction,
  listAction,
  mkdirAction,
  renameAction,
  uploadAction,
} from "./menu_files.ts";
import {
  type MenuChoice,
  PromptCancelled,
  type Prompter,
  terminalPrompter,
} from "./menu_prompts.ts";
import { type Connector, type InterruptSource, MenuSession, sigintSource } from "./menu_session.ts";
import { errorLine, header } from "./menu_view.ts";
import { canPrompt, type ConnectOptions, parseHostPort, UsageError } from "./options.ts";
import { terminalProgress } from "./progress.ts";
import { detectStyle, type Style } from "./style.ts";
import { resolveServer } from "./target.ts";
import { hostKey } from "./trust.ts";
import type { ProgressSink } from "./transfer.ts";

/** The main menu, in order. */
export const MENU_ACTIONS: readonly MenuAction[] = [
  {
    id: "register",
    label: "Register",
    description: "Create an account on this server",
    needsLogin: false,
    run: registerAction,
  },
  {
    id: "login",
    label: "Log in",
    description: "Log in with your email and password",
    needsLogin: false,
    run: loginAction,
  },
  {
    id: "upload",
    label: "Upload",
    description: "Send files or folders from this computer",
    needsLogin: true,
    run: uploadAction,
  },
  {
    id: "download",
    label: "Download",
    description: "Fetch a file to this computer",
    needsLogin: true,
    run: downloadAction,
  },
  {
    id: "list",
    label: "List",
    description: "Show the files in the current folder",
    needsLogin: true,
    run: listAction,
  },
  {
    id: "delete",
    label: "Delete",
    description: "Remove a file or folder",
    needsLogin: true,
    run: deleteAction,
  },
  {
    id: "rename",
    label: "Rename",
    description: "Rename or move a file or folder",
    needsLogin: true,
    run: renameAction,
  },
  {
    id: "mkdir",
    label: "Make folder",
    description: "Create a folder",
    needsLogin: true,
    run: mkdirAction,
  },
  {
    id: "passwd",
    label: "Change password",
    description: "Choose a new password",
    needsLogin: true,
    run: passwdAction,
  },
  {
    id: "logout",
    label: "Log out",
    description: "Log out (the menu stays open)",
    needsLogin: true,
    run: logoutAction,
  },
  {
    id: "quit",
    label: "Quit",
    description: "Leave (Esc or Ctrl-C also quit here)",
    needsLogin: false,
    run: () => Promise.resolve(),
  },
];

/** The main menu's lines for the session's state: login-only entries say so until then. */
export function menuChoices(loggedIn: boolean): MenuChoice<ActionId>[] {
  return MENU_ACTIONS.map((action) => ({
    name: action.label,
    value: action.id,
    description: action.id === "login" && loggedIn ? "Log in as someone else" : action.description,
    ...(action.needsLogin && !loggedIn
      ? { disabled: action.id === "logout" ? "not logged in" : "log in first" }
      : {}),
  }));
}

/** What the menu runs on; everything defaults to the real terminal and network. */
export interface MenuDeps {
  prompter: Prompter;
  output: MenuOutput;
  style: Style;
  /** Local folder for relative paths and downloads (default: the working directory). */
  cwd: string;
  progress: () => ProgressSink;
  interrupts: InterruptSource;
  /** Opens a connection; default: `openClient` with the options (trust, discovery). */
  connect: Connector;
  /** The address shown in the header (default: from the options or discovery). */
  address: string;
  now: () => number;
}

const stderrOutput: MenuOutput = {
  line: (text = "") => {
    process.stderr.write(`${text}\n`);
  },
};

function printError(out: MenuOutput, style: Style, error: unknown): void {
  if (error instanceof CloudError && error.code === "E_TRUST") {
    for (const line of error.message.split("\n")) out.line(style.red(style.bold(line)));
    return;
  }
  out.line(errorLine(style, error));
}

/** Errors shown as a message (never a stack): CloudError, usage and I/O errors. */
function isUserFacing(error: unknown): boolean {
  return error instanceof CloudError || error instanceof UsageError ||
    Object.values(Deno.errors).some((type) => error instanceof type);
}

async function connectorFor(
  options: ConnectOptions,
  io: CommandIo,
): Promise<{ connect: Connector; address: string }> {
  const target = options.host !== undefined
    ? parseHostPort(options.host)
    : await resolveServer(options, io);
  const address = hostKey(target.host, target.port);
  // Resolved once: reconnecting must not run discovery or ask for an address again.
  const fixed: ConnectOptions = { ...options, host: address };
  return { connect: () => openClient(fixed, io), address };
}

/** The main loop: header, menu, action, until Quit / Esc / Ctrl-C. Returns the exit code. */
export async function menuLoop(ctx: MenuContext): Promise<number> {
  const { session, prompter, out, style } = ctx;
  let next: ActionId | undefined;
  for (;;) {
    out.line();
    out.line(
      header(style, {
        serverName: session.serverName,
        address: session.address,
        email: session.email,
        folder: session.folderLabel,
      }),
    );
    const choices = menuChoices(session.loggedIn);
    const enabled = (id: ActionId | undefined) =>
      choices.some((c) => c.value === id && c.disabled === undefined);
    const fallback: ActionId = session.loggedIn ? "list" : "register";
    let id: ActionId;
    try {
      id = await prompter.select<ActionId>({
        message: "What would you like to do?",
        choices,
        default: enabled(next) ? next! : fallback,
        pageSize: choices.length,
        escape: "quit",
        echo: false,
      });
    } catch (error) {
      if (error instanceof PromptCancelled) break;
      throw error;
    }
    if (id === "quit") break;
    const action = MENU_ACTIONS.find((a) => a.id === id)!;
    out.line(style.bold(`${style.symbols.pointer} ${action.label}`));
    next = id;
    try {
      const suggestion = await action.run(ctx);
      if (suggestion) next = suggestion;
    } catch (error) {
      if (error instanceof PromptCancelled) {
        out.line(style.dim("Cancelled"));
        continue;
      }
      if (!isUserFacing(error)) throw error;
      printError(out, style, error);
      if (error instanceof CloudError && error.code === "E_TRUST") {
        await session.close().catch(() => {});
        return error.exitCode;
      }
    }
  }
  await session.close().catch(() => {});
  out.line(style.dim("Bye"));
  return EXIT.OK;
}

/**
 * Runs the interactive menu and returns the exit code: 0 after Quit, Esc or Ctrl-C at the
 * menu; 2 when there is no terminal; the error's code when the first connection fails
 * (9 for an unreachable or untrusted server).
 *
 * @example
 * ```ts
 * Deno.exit(await runMenu({ host: "192.168.1.5" }));
 * ```
 */
export async function runMenu(
  options: ConnectOptions,
  deps: Partial<MenuDeps> = {},
): Promise<number> {
  const style = deps.style ?? detectStyle();
  const out = deps.output ?? stderrOutput;
  if (deps.prompter === undefined && !canPrompt()) {
    out.line(
      errorLine(
        style,
        new UsageError(
          "The interactive menu needs a terminal; give a COMMAND instead (see `cloud help connect`)",
        ),
      ),
    );
    return EXIT.USAGE;
  }
  const prompter = deps.prompter ?? terminalPrompter({ style });
  const io: CommandIo = {
    out: (line) => out.line(line),
    err: (line) => out.line(style.dim(line)),
  };
  let session: MenuSession;
  try {
    let connect = deps.connect;
    let address = deps.address ?? options.host ?? "";
    if (connect === undefined) {
      const resolved = await connectorFor(options, io);
      connect = resolved.connect;
      address = resolved.address;
    }
    session = await MenuSession.open(address, connect);
  } catch (error) {
    if (error instanceof PromptCancelled) return EXIT.OK;
    if (error instanceof Error && error.name === "ExitPromptError") return EXIT.OK;
    if (error instanceof UsageError) {
      printError(out, style, error);
      return EXIT.USAGE;
    }
    if (error instanceof CloudError) {
      printError(out, style, error);
      return error.exitCode;
    }
    throw error;
  }
  const ctx: MenuContext = {
    session,
    prompter,
    out,
    style,
    cwd: deps.cwd ?? Deno.cwd(),
    progress: deps.progress ?? (() => terminalProgress()),
    interrupts: deps.interrupts ?? sigintSource,
    now: deps.now ?? (() => Date.now()),
  };
  return await menuLoop(ctx);
}

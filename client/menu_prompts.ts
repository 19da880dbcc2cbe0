/**
 * The prompt seam of the interactive menu: a small {@link Prompter} interface the menu
 * asks through, and its terminal implementation on `npm:@inquirer/prompts` (arrow-key
 * lists, masked passwords, validation on the spot, a path prompt with Tab completion).
 * Tests drive the menu with a scripted Prompter instead; no terminal needed.
 *
 * Esc cancels a prompt, Ctrl-C interrupts it: both reject with {@link PromptCancelled}.
 *
 * @module
 */

import process from "node:process";
import { completeLocalPath } from "./menu_paths.ts";
import type { Style } from "./style.ts";

/** One selectable line of a list. */
export interface MenuChoice<T> {
  name: string;
  value: T;
  /** Shown under the list while this line is active. */
  description?: string;
  /** A disabled line is shown dimmed and cannot be chosen; a string says why. */
  disabled?: boolean | string;
}

/** A line of a list: a choice, or a heading that cannot be chosen. */
export type MenuItem<T> = MenuChoice<T> | { separator: string };

/** Returns why a value is refused, or null when it is fine. */
export type Validator = (value: string) => string | null | Promise<string | null>;

/** Options of {@link Prompter.select}. */
export interface SelectOptions<T> {
  message: string;
  choices: MenuItem<T>[];
  /** The value the cursor starts on. */
  default?: T;
  /** Lines shown at once (default 12). */
  pageSize?: number;
  /** What Esc does, for the key help line (default "back"). */
  escape?: string;
  /** Print "✔ message answer" after the choice (default true). */
  echo?: boolean;
}

/** Options of {@link Prompter.input}. */
export interface InputOptions {
  message: string;
  /** Used when the answer is empty; shown in brackets. */
  default?: string;
  /** Put the default on the line, ready to edit, instead of showing it in brackets. */
  editable?: boolean;
  /** Checked on Enter; a problem is shown under the field and the field is asked again. */
  validate?: Validator;
}

/** Options of {@link Prompter.password}. */
export interface PasswordOptions {
  message: string;
  validate?: Validator;
}

/** Options of {@link Prompter.confirm}. */
export interface ConfirmOptions {
  message: string;
  /** The answer to Enter (default false). */
  default?: boolean;
}

/** Options of {@link Prompter.path}. */
export interface PathOptions {
  message: string;
  /** Folder that relative paths start from. */
  cwd: string;
  /** Offer folders only (default false: files and folders). */
  dirsOnly?: boolean;
  /** A first line offered before any typing, such as "." for the current folder. */
  initial?: MenuChoice<string>;
  validate?: Validator;
}

/** How the menu asks the user things. */
export interface Prompter {
  /** One choice from a list (arrow keys, Enter). */
  select<T>(options: SelectOptions<T>): Promise<T>;
  /** A line of text. */
  input(options: InputOptions): Promise<string>;
  /** A secret: masked while typed, never echoed afterwards. */
  password(options: PasswordOptions): Promise<string>;
  /** Yes or no. */
  confirm(options: ConfirmOptions): Promise<boolean>;
  /** A local path, completed with Tab from the file system; returns it as typed. */
  path(options: PathOptions): Promise<string>;
}

/** A prompt was left with Esc ("escape") or Ctrl-C ("interrupt"). */
export class PromptCancelled extends Error {
  override name = "PromptCancelled";
  constructor(readonly how: "escape" | "interrupt") {
    super(how === "escape" ? "Cancelled with Esc" : "Interrupted with Ctrl-C");
  }
}

/** The key help line, with ASCII names when Unicode is off. */
function keysHelp(style: Style, escape: string, extra: [string, string][]) {
  return (keys: [string, string][]): string => {
    const all: [string, string][] = [...keys, ...extra, ["esc", escape]];
    return all.map(([key, action]) => {
      const name = style.unicode ? key : key.replace("↑↓", "up/down").replace("⏎", "enter");
      return `${style.bold(name)} ${style.dim(action)}`;
    }).join(style.dim(` ${style.symbols.bullet} `));
  };
}

/** An @inquirer theme drawn with `style`. */
function themeFor(style: Style, escape: string, extraKeys: [string, string][] = []) {
  return {
    prefix: { idle: style.blue("?"), done: style.green(style.symbols.ok) },
    icon: { cursor: style.symbols.pointer },
    style: {
      answer: style.cyan,
      message: (text: string) => style.bold(text),
      error: (text: string) => style.red(`${style.symbols.error} ${text}`),
      defaultAnswer: (text: string) => style.dim(`(${text})`),
      help: style.dim,
      highlight: style.cyan,
      key: (text: string) => style.cyan(style.bold(`<${text}>`)),
      disabled: (text: string) => style.dim(text),
      description: (text: string) => style.dim(text),
      searchTerm: style.cyan,
      keysHelpTip: keysHelp(style, escape, extraKeys),
    },
  };
}

interface KeyEvent {
  name?: string;
  ctrl?: boolean;
}

/** Output that the prompts draw on; defaults to stderr like every other prompt of `cloud`. */
export interface TerminalPrompterOptions {
  style: Style;
  output?: NodeJS.WritableStream;
}

/**
 * The terminal Prompter. Prompts are cleared when answered and replaced by one line
 * (`✔ Email ada@example.com`; a password shows as a fixed `********`), so a cancelled
 * prompt leaves nothing behind.
 */
export function terminalPrompter(options: TerminalPrompterOptions): Prompter {
  const { style } = options;
  const output = options.output ?? process.stderr;
  const done = (message: string, answer: string) => {
    output.write(`${style.green(style.symbols.ok)} ${style.bold(message)} ${style.cyan(answer)}\n`);
  };

  /** Runs one inquirer prompt with Esc wired to cancel it. */
  async function run<T>(
    prompt: (
      context: { signal: AbortSignal; output: NodeJS.WritableStream; clearPromptOnDone: boolean },
    ) => Promise<T>,
  ): Promise<T> {
    const controller = new AbortController();
    const onKey = (_text: unknown, key: KeyEvent | undefined) => {
      if (key?.name === "escape" && !key.ctrl) controller.abort();
    };
    process.stdin.on("keypress", onKey);
    try {
      return await prompt({ signal: controller.signal, output, clearPromptOnDone: true });
    } catch (error) {
      const name = error instanceof Error ? error.name : "";
      if (name === "AbortPromptError" || name === "CancelPromptError") {
        throw new PromptCancelled("escape");
      }
      if (name === "ExitPromptError") throw new PromptCancelled("interrupt");
      throw error;
    } finally {
      process.stdin.off("keypress", onKey);
    }
  }

  const asInquirerValidator = (validate?: Validator) =>
    validate
      ? async (value: string): Promise<string | boolean> => (await validate(value)) ?? true
      : undefined;

  return {
    async select<T>(o: SelectOptions<T>): Promise<T> {
      const { select, Separator } = await import("@inquirer/prompts");
      const choices = o.choices.map((item) =>
        "separator" in item ? new Separator(style.dim(item.separator)) : {
          name: item.name,
          value: item.value,
          ...(item.description !== undefined ? { description: item.description } : {}),
          ...(item.disabled !== undefined
            ? { disabled: typeof item.disabled === "string" ? `(${item.disabled})` : item.disabled }
            : {}),
        }
      );
      const value = await run((context) =>
        select<T>({
          message: o.message,
          choices,
          pageSize: o.pageSize ?? 12,
          loop: false,
          theme: themeFor(style, o.escape ?? "back"),
          ...(o.default !== undefined ? { default: o.default } : {}),
        }, context)
      );
      if (o.echo !== false) {
        const chosen = o.choices.find((c) => !("separator" in c) && c.value === value);
        done(o.message, chosen && !("separator" in chosen) ? chosen.name : String(value));
      }
      return value;
    },

    async input(o: InputOptions): Promise<string> {
      const { input } = await import("@inquirer/prompts");
      const validate = asInquirerValidator(o.validate);
      const value = await run((context) =>
        input({
          message: o.message,
          theme: themeFor(style, "back"),
          ...(o.default !== undefined ? { default: o.default } : {}),
          ...(o.editable ? { prefill: "editable" as const } : {}),
          ...(validate ? { validate } : {}),
        }, context)
      );
      done(o.message, value);
      return value;
    },

    async password(o: PasswordOptions): Promise<string> {
      const { password } = await import("@inquirer/prompts");
      const validate = asInquirerValidator(o.validate);
      const value = await run((context) =>
        password({
          message: o.message,
          mask: "*",
          // Never offer to reveal it: the menu must not print a password.
          toggleMask: false,
          theme: themeFor(style, "back"),
          ...(validate ? { validate } : {}),
        }, context)
      );
      done(o.message, "********");
      return value;
    },

    async confirm(o: ConfirmOptions): Promise<boolean> {
      const { confirm } = await import("@inquirer/prompts");
      const value = await run((context) =>
        confirm(
          { message: o.message, default: o.default ?? false, theme: themeFor(style, "back") },
          context,
        )
      );
      done(o.message, value ? "yes" : "no");
      return value;
    },

    async path(o: PathOptions): Promise<string> {
      const { search } = await import("@inquirer/prompts");
      const validate = asInquirerValidator(o.validate);
      const value = await run((context) =>
        search<string>({
          message: o.message,
          pageSize: 10,
          theme: themeFor(style, "back", [["tab", "complete"]]),
          ...(validate ? { validate } : {}),
          source: async (term) => {
            const candidates = await completeLocalPath(term ?? "", {
              cwd: o.cwd,
              dirsOnly: o.dirsOnly ?? false,
            });
            const choices: MenuChoice<string>[] = [];
            if ((term ?? "") === "" && o.initial) choices.push(o.initial);
            for (const c of candidates) {
              choices.push({ name: c.path, value: c.path, description: c.description });
            }
            return choices;
          },
        }, context)
      );
      done(o.message, value);
      return value;
    },
  };
}

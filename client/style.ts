/**
 * Colours and symbols for the interactive client, degrading to plain text and ASCII when
 * `NO_COLOR` is set (https://no-color.org) or the terminal is dumb.
 *
 * @module
 */

/** Symbols the menu uses, Unicode or ASCII. */
export interface Symbols {
  ok: string;
  error: string;
  warning: string;
  info: string;
  pointer: string;
  folder: string;
  up: string;
  bullet: string;
  separator: string;
}

/** Text styling; every function returns its input unchanged when colour is off. */
export interface Style {
  /** True when ANSI colours are used. */
  readonly color: boolean;
  /** True when Unicode symbols are used. */
  readonly unicode: boolean;
  readonly symbols: Symbols;
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
  blue(text: string): string;
  inverse(text: string): string;
}

const UNICODE_SYMBOLS: Symbols = {
  ok: "✔",
  error: "✖",
  warning: "⚠",
  info: "ℹ",
  pointer: "❯",
  folder: "▸",
  up: "↑",
  bullet: "•",
  separator: "·",
};

const ASCII_SYMBOLS: Symbols = {
  ok: "ok",
  error: "error:",
  warning: "!!",
  info: "i",
  pointer: ">",
  folder: "+",
  up: "^",
  bullet: "*",
  separator: "|",
};

function sgr(open: number, close: number): (text: string) => string {
  return (text) => `\x1b[${open}m${text}\x1b[${close}m`;
}

const identity = (text: string) => text;

/**
 * Builds a style. `color` turns ANSI colours on; `unicode` picks Unicode symbols over
 * ASCII ones.
 *
 * @example
 * ```ts
 * const style = createStyle({ color: false, unicode: false });
 * style.red(`${style.symbols.error} Not found`); // "error: Not found"
 * ```
 */
export function createStyle(options: { color: boolean; unicode: boolean }): Style {
  const c = options.color;
  return {
    color: c,
    unicode: options.unicode,
    symbols: options.unicode ? UNICODE_SYMBOLS : ASCII_SYMBOLS,
    bold: c ? sgr(1, 22) : identity,
    dim: c ? sgr(2, 22) : identity,
    red: c ? sgr(31, 39) : identity,
    green: c ? sgr(32, 39) : identity,
    yellow: c ? sgr(33, 39) : identity,
    cyan: c ? sgr(36, 39) : identity,
    blue: c ? sgr(34, 39) : identity,
    inverse: c ? sgr(7, 27) : identity,
  };
}

/** True when the environment asks for plain text: `NO_COLOR` set (any value) or `TERM=dumb`. */
export function wantsPlain(env: { get(name: string): string | undefined } = Deno.env): boolean {
  const noColor = env.get("NO_COLOR");
  const term = env.get("TERM");
  return (noColor !== undefined && noColor !== "") || term === "dumb";
}

/**
 * The style for this process: plain text and ASCII when {@link wantsPlain}, ASCII symbols
 * on the Linux console (`TERM=linux`, no Unicode font), colours and Unicode otherwise.
 */
export function detectStyle(env: { get(name: string): string | undefined } = Deno.env): Style {
  if (wantsPlain(env)) return createStyle({ color: false, unicode: false });
  return createStyle({ color: true, unicode: env.get("TERM") !== "linux" });
}

const ANSI_RE = new RegExp(String.raw`\x1b\[[0-9;?]*[A-Za-z]`, "g");

/** Removes ANSI escape sequences (for measuring and for tests). */
export function stripAnsi(text: string): string {
  return text.replace(ANSI_RE, "");
}

/**
 * Server event log: one line per event, as `text` (fail2ban-friendly `key=value` pairs) or
 * `json`. Never given a password.
 *
 * @module
 */

/** Output format of the log. */
export type LogFormat = "text" | "json";

/** Fields of one event. Values are printed as given; strings are quoted when needed. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** A sink for one formatted line. */
export type LineSink = (line: string) => void;

function quote(value: string): string {
  return /^[\w.:@/+\-[\]]+$/.test(value) ? value : JSON.stringify(value);
}

/** Formats one event as a line of the given format. */
export function formatEvent(
  format: LogFormat,
  event: string,
  fields: LogFields,
  at: Date = new Date(),
): string {
  if (format === "json") {
    return JSON.stringify({ time: at.toISOString(), event, ...fields });
  }
  const parts = [at.toISOString(), event];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${typeof value === "string" ? quote(value) : String(value)}`);
  }
  return parts.join(" ");
}

/**
 * A logger writing one line per event.
 *
 * @example
 * ```ts
 * const log = new Logger("text", console.log);
 * log.event("auth_fail", { email: "a@b.c", src: "10.0.0.9" });
 * // 2026-12-04T15:00:00.000Z auth_fail email=a@b.c src=10.0.0.9
 * ```
 */
export class Logger {
  constructor(readonly format: LogFormat, readonly sink: LineSink) {}

  /** Logs one event. */
  event(event: string, fields: LogFields = {}): void {
    this.sink(formatEvent(this.format, event, fields));
  }
}

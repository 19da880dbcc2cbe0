/**
 * Account field rules (SPEC.md section 3): email, name, phone and password.
 *
 * Every rule comes twice: `validateX()` throws a {@link CloudError} (E_INVALID or
 * E_WEAK_PASSWORD) and returns the normalised value, for the server; `checkX()` returns
 * the problem as a message or null, for the client to check a field on the spot before
 * anything is sent. Both share one implementation, so the two sides cannot disagree.
 *
 * Decisions:
 * - Email: trimmed, NFC-normalised, lower-cased; syntax of the WHATWG HTML "valid email
 *   address" extended to Unicode letters and digits, at most 254 characters (64 in the
 *   local part). Any domain, including a single-label LAN name such as `alice@nas`.
 * - Name: trimmed and NFC-normalised, 1–50 Unicode code points (not grapheme clusters:
 *   code points are what a MySQL `VARCHAR(50)` in utf8mb4 and SQLite count, so a name that
 *   passes here always fits the column). Refused: control characters (C0, DEL, C1), line
 *   and paragraph separators, unpaired surrogates, private-use code points and invisible
 *   format characters — bidirectional overrides and isolates (they can make a name display
 *   as something else), zero-width spaces, soft hyphens — except the zero-width joiners and
 *   tag characters that emoji sequences use.
 * - Phone: trimmed, 7–20 characters of digits, spaces and `+ - ( )`, with at least 4
 *   digits (the shortest national numbers of the ITU-T E.164 plan) and `+` only first.
 * - Password: 8–72 UTF-8 bytes (bcrypt ignores bytes past 72, so longer is refused, not
 *   truncated); not equal to or containing the email and not equal to the email's local
 *   part (case-insensitive); strength by zxcvbn-ts with its common and English
 *   dictionaries, the email, its local part, the domain labels, the name and its words as
 *   user inputs; scores 0 and 1 are refused with the estimator's hint. zxcvbn scores 0–1
 *   mean fewer than 10^6 guesses: the common-password lists ("password123", "monkey123",
 *   "iloveyou2", "P@ssw0rd") and small variations of them, which is what NIST 800-63B asks
 *   to block. Score 2 (10^6–10^8 guesses) is accepted: the lockout makes online guessing of
 *   that many impossible and bcrypt makes offline guessing slow; refusing it would push
 *   users to composition tricks. No composition rules.
 *   Passwords are not Unicode-normalised here: whoever hashes must hash the same string
 *   the user types at login.
 *
 * The estimator's dictionaries are large: the estimator is built on first use (about
 * 150–200 ms and ~50 MB of heap on our machines) and kept. {@link preloadPasswordEstimator}
 * builds it ahead of time, e.g. at server start, so that no request pays for it.
 *
 * @module
 */

import { ZxcvbnFactory } from "@zxcvbn-ts/core";
import * as zxcvbnCommon from "@zxcvbn-ts/language-common";
import * as zxcvbnEn from "@zxcvbn-ts/language-en";
import { CloudError, type ErrorCode } from "../protocol/errors.ts";

/** Longest email accepted, in code points (RFC 5321 path limit minus the brackets). */
export const EMAIL_MAX_LENGTH = 254;
/** Longest local part (before the "@") accepted, in code points. */
export const EMAIL_LOCAL_MAX_LENGTH = 64;
/** Longest name accepted, in Unicode code points after trimming. */
export const NAME_MAX_LENGTH = 50;
/** Shortest phone number accepted, in characters after trimming. */
export const PHONE_MIN_LENGTH = 7;
/** Longest phone number accepted, in characters after trimming. */
export const PHONE_MAX_LENGTH = 20;
/** Fewest digits a phone number must contain. */
export const PHONE_MIN_DIGITS = 4;
/** Shortest password accepted, in UTF-8 bytes. */
export const PASSWORD_MIN_BYTES = 8;
/** Longest password accepted, in UTF-8 bytes: bcrypt ignores the bytes after these. */
export const PASSWORD_MAX_BYTES = 72;
/** Lowest zxcvbn score (0–4) accepted. */
export const PASSWORD_MIN_SCORE = 2;

/** What the password is checked against besides the dictionaries. */
export interface PasswordContext {
  /** The account's email (normalised or not). */
  email: string;
  /** The account's display name, if known. */
  name?: string;
  /** The account's phone number, if known. */
  phone?: string;
}

/** A rule violation: the wire code and the message shown to the user. */
interface Problem {
  code: ErrorCode;
  message: string;
}

const encoder = new TextEncoder();

/**
 * Normalises an email as stored and looked up: trimmed, Unicode NFC, lower-cased.
 * Does not validate.
 *
 * @example
 * ```ts
 * normaliseEmail("  Alice@Example.COM "); // "alice@example.com"
 * ```
 */
export function normaliseEmail(raw: string): string {
  return raw.trim().normalize("NFC").toLowerCase();
}

// WHATWG HTML "valid email address", with Unicode letters, marks and digits allowed too.
const LOCAL_RE = /^[\p{L}\p{M}\p{N}.!#$%&'*+/=?^_`{|}~-]+$/u;
const LABEL_RE = /^[\p{L}\p{M}\p{N}](?:[\p{L}\p{M}\p{N}-]{0,61}[\p{L}\p{M}\p{N}])?$/u;

function emailProblem(raw: string): Problem | null {
  const email = normaliseEmail(raw);
  const invalid = (why: string): Problem => ({
    code: "E_INVALID",
    message: `Invalid email "${printable(email)}": ${why}`,
  });
  if (email === "") return { code: "E_INVALID", message: "Email is empty" };
  if ([...email].length > EMAIL_MAX_LENGTH) {
    return invalid(`longer than ${EMAIL_MAX_LENGTH} characters`);
  }
  const at = email.lastIndexOf("@");
  if (at === -1) return invalid(`no "@"`);
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  if (local === "") return invalid(`nothing before the "@"`);
  if ([...local].length > EMAIL_LOCAL_MAX_LENGTH) {
    return invalid(`more than ${EMAIL_LOCAL_MAX_LENGTH} characters before the "@"`);
  }
  if (!LOCAL_RE.test(local)) return invalid(`characters not allowed before the "@"`);
  if (domain === "") return invalid(`no domain after the "@"`);
  if (!domain.split(".").every((label) => LABEL_RE.test(label))) {
    return invalid('not a valid domain after the "@"');
  }
  return null;
}

/**
 * Returns why `raw` is not an acceptable email, or null when it is (checked after
 * {@link normaliseEmail}).
 */
export function checkEmail(raw: string): string | null {
  return emailProblem(raw)?.message ?? null;
}

/**
 * Returns the normalised email, or throws CloudError E_INVALID.
 *
 * @example
 * ```ts
 * validateEmail(" Bob@Example.org"); // "bob@example.org"
 * ```
 */
export function validateEmail(raw: string): string {
  throwIf(emailProblem(raw));
  return normaliseEmail(raw);
}

// Cc controls, Zl/Zp separators, Cs lone surrogates, Co private use, and Cf format
// characters (bidirectional overrides and isolates, zero-width space, soft hyphen, BOM)
// except the joiners and tag characters that emoji sequences need.
const NAME_FORBIDDEN_RE =
  /[\p{Cc}\p{Zl}\p{Zp}\p{Cs}\p{Co}]|(?![\u200c\u200d\u{e0020}-\u{e007f}])\p{Cf}/u;

function normaliseName(raw: string): string {
  return raw.trim().normalize("NFC");
}

function nameProblem(raw: string): Problem | null {
  const name = normaliseName(raw);
  if (name === "") return { code: "E_INVALID", message: "Name is empty" };
  const length = [...name].length;
  if (length > NAME_MAX_LENGTH) {
    return {
      code: "E_INVALID",
      message: `Name is too long: ${length} characters, at most ${NAME_MAX_LENGTH}`,
    };
  }
  const bad = NAME_FORBIDDEN_RE.exec(name);
  if (bad !== null) {
    return {
      code: "E_INVALID",
      message: `Invalid name "${printable(name)}": character ${codePointName(bad[0])} ` +
        "is not allowed",
    };
  }
  return null;
}

/** Returns why `raw` is not an acceptable name, or null when it is. */
export function checkName(raw: string): string | null {
  return nameProblem(raw)?.message ?? null;
}

/**
 * Returns the name trimmed and NFC-normalised, or throws CloudError E_INVALID.
 *
 * @example
 * ```ts
 * validateName("  Zoë Ångström "); // "Zoë Ångström"
 * ```
 */
export function validateName(raw: string): string {
  throwIf(nameProblem(raw));
  return normaliseName(raw);
}

function phoneProblem(raw: string): Problem | null {
  const phone = raw.trim();
  const invalid = (why: string): Problem => ({
    code: "E_INVALID",
    message: `Invalid phone number "${printable(phone)}": ${why}`,
  });
  if (phone === "") return { code: "E_INVALID", message: "Phone number is empty" };
  if (phone.length < PHONE_MIN_LENGTH || phone.length > PHONE_MAX_LENGTH) {
    return invalid(`use ${PHONE_MIN_LENGTH}–${PHONE_MAX_LENGTH} characters`);
  }
  if (!/^[0-9 +\-()]+$/.test(phone)) {
    return invalid("use only digits, spaces and + - ( )");
  }
  if (phone.lastIndexOf("+") > 0) return invalid(`"+" may only come first`);
  const digits = phone.replace(/[^0-9]/g, "").length;
  if (digits < PHONE_MIN_DIGITS) return invalid(`at least ${PHONE_MIN_DIGITS} digits`);
  return null;
}

/** Returns why `raw` is not an acceptable phone number, or null when it is. */
export function checkPhone(raw: string): string | null {
  return phoneProblem(raw)?.message ?? null;
}

/**
 * Returns the phone number trimmed, or throws CloudError E_INVALID.
 *
 * @example
 * ```ts
 * validatePhone(" +44 (20) 7946-0958"); // "+44 (20) 7946-0958"
 * ```
 */
export function validatePhone(raw: string): string {
  throwIf(phoneProblem(raw));
  return raw.trim();
}

let estimator: ZxcvbnFactory | null = null;

function getEstimator(): ZxcvbnFactory {
  estimator ??= new ZxcvbnFactory({
    dictionary: { ...zxcvbnCommon.dictionary, ...zxcvbnEn.dictionary },
    graphs: zxcvbnCommon.adjacencyGraphs,
    translations: zxcvbnEn.translations,
  });
  return estimator;
}

/**
 * Builds the password strength estimator now instead of on the first password check
 * (it takes ~150–200 ms of CPU on the calling thread). Idempotent.
 */
export function preloadPasswordEstimator(): void {
  getEstimator();
}

/** The words of the context that zxcvbn should treat as trivially guessable. */
function userInputs(context: PasswordContext): string[] {
  const inputs = new Set<string>();
  const add = (value: string | undefined) => {
    const v = value?.trim().toLowerCase();
    if (v !== undefined && v !== "") inputs.add(v);
  };
  const email = normaliseEmail(context.email);
  add(email);
  const at = email.lastIndexOf("@");
  if (at !== -1) {
    add(email.slice(0, at));
    for (const part of email.slice(0, at).split(/[.+_-]/)) add(part);
    for (const label of email.slice(at + 1).split(".")) add(label);
  }
  if (context.name !== undefined) {
    add(context.name);
    for (const word of context.name.split(/[\s.,'-]+/u)) add(word);
  }
  if (context.phone !== undefined) add(context.phone.replace(/[^0-9]/g, ""));
  return [...inputs];
}

function passwordProblem(password: string, context: PasswordContext): Problem | null {
  const bytes = encoder.encode(password).length;
  if (bytes < PASSWORD_MIN_BYTES) {
    return {
      code: "E_INVALID",
      message: `Password is too short: ${bytes} bytes, at least ${PASSWORD_MIN_BYTES}`,
    };
  }
  if (bytes > PASSWORD_MAX_BYTES) {
    return {
      code: "E_INVALID",
      message: `Password is too long: ${bytes} bytes in UTF-8, at most ${PASSWORD_MAX_BYTES}` +
        " (bcrypt would ignore the rest)",
    };
  }
  const lower = password.toLowerCase();
  const email = normaliseEmail(context.email);
  if (email !== "" && lower.includes(email)) {
    return { code: "E_WEAK_PASSWORD", message: "Password must not contain your email" };
  }
  const at = email.lastIndexOf("@");
  if (at > 0 && lower === email.slice(0, at)) {
    return {
      code: "E_WEAK_PASSWORD",
      message: 'Password must not be the part of your email before the "@"',
    };
  }
  const result = getEstimator().check(password, userInputs(context));
  if (result.score < PASSWORD_MIN_SCORE) {
    const hint = [result.feedback.warning, ...result.feedback.suggestions]
      .filter((s): s is string => s !== null && s !== "")
      .join(" ");
    return {
      code: "E_WEAK_PASSWORD",
      message: `Password is too easy to guess${hint === "" ? "" : `: ${hint}`}`.replace(
        /\.$/,
        "",
      ),
    };
  }
  return null;
}

/**
 * Returns why `password` is not acceptable for the account in `context`, or null when it
 * is. Never includes the password in the message.
 */
export function checkPassword(password: string, context: PasswordContext): string | null {
  return passwordProblem(password, context)?.message ?? null;
}

/**
 * Throws CloudError E_INVALID (length) or E_WEAK_PASSWORD (contains the email, too easy
 * to guess — the message carries the estimator's hint) unless `password` is acceptable.
 * The password itself is never part of the message.
 *
 * @example
 * ```ts
 * validatePassword("correct horse battery staple", { email: "a@example.org" });
 * validatePassword("password123", { email: "a@example.org" }); // throws E_WEAK_PASSWORD
 * ```
 */
export function validatePassword(password: string, context: PasswordContext): void {
  throwIf(passwordProblem(password, context));
}

function throwIf(problem: Problem | null): void {
  if (problem !== null) throw new CloudError(problem.code, problem.message);
}

/** `text` with control characters escaped, safe to put in a one-line message. */
function printable(text: string): string {
  return text.replace(
    /[\p{Cc}\p{Zl}\p{Zp}\p{Cf}\p{Cs}]/gu,
    (c) => codePointName(c),
  );
}

function codePointName(c: string): string {
  return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0")}`;
}

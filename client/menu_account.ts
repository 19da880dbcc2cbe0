/**
 * Account actions of the menu: register, log in, change password, log out. Every field
 * is checked on the spot with the server's own rules (server/validation.ts) and asked
 * again with a helpful message; Esc steps back to the previous field.
 *
 * @module
 */

import { CloudError } from "../protocol/errors.ts";
import { checkEmail, checkName, checkPassword, checkPhone } from "../server/validation.ts";
import type { ActionId, MenuContext } from "./menu_context.ts";
import { PromptCancelled } from "./menu_prompts.ts";
import { okLine, warnLine } from "./menu_view.ts";

/** One field of a form: asks for it given the answers so far. */
export interface FormStep {
  key: string;
  ask(values: Record<string, string>): Promise<string>;
}

/**
 * Asks `steps` in order. Esc on a field goes back to the previous one (Esc on the first
 * cancels the form); `recheck` may send the user back to a field once all are answered.
 */
export async function runForm(
  steps: FormStep[],
  options: {
    recheck?: (values: Record<string, string>) => { key: string; problem: string } | null;
    onProblem?: (problem: string) => void;
  } = {},
): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  let i = 0;
  for (let rounds = 0; rounds < 1000; rounds++) {
    if (i >= steps.length) {
      const again = options.recheck?.(values) ?? null;
      if (again === null) return values;
      options.onProblem?.(again.problem);
      i = Math.max(0, steps.findIndex((s) => s.key === again.key));
      continue;
    }
    const step = steps[i]!;
    try {
      values[step.key] = await step.ask(values);
      i++;
    } catch (error) {
      if (error instanceof PromptCancelled && error.how === "escape" && i > 0) {
        i--;
        continue;
      }
      throw error;
    }
  }
  throw new Error("Form did not settle");
}

const required = (what: string) => (value: string) =>
  value.trim() === "" ? `${what} is required` : null;

/** Register: email, password, confirmation, phone, name; then offers to log in. */
export async function registerAction(ctx: MenuContext): Promise<ActionId | void> {
  const { prompter, out, style } = ctx;
  const values = await runForm([
    {
      key: "email",
      ask: (v) =>
        prompter.input({
          message: "Email",
          ...(v.email ? { default: v.email, editable: true } : {}),
          validate: (value) => checkEmail(value),
        }),
    },
    {
      key: "password",
      ask: (v) =>
        prompter.password({
          message: "Password (8 to 72 bytes, not easy to guess)",
          validate: (value) => checkPassword(value, { email: v.email ?? "" }),
        }),
    },
    {
      key: "confirm",
      ask: (v) =>
        prompter.password({
          message: "Confirm password",
          validate: (value) =>
            value === v.password
              ? null
              : "The passwords differ: type the same one again (Esc to choose another)",
        }),
    },
    {
      key: "phone",
      ask: (v) =>
        prompter.input({
          message: "Phone",
          ...(v.phone ? { default: v.phone, editable: true } : {}),
          validate: (value) => checkPhone(value),
        }),
    },
    {
      key: "name",
      ask: (v) =>
        prompter.input({
          message: "Name",
          ...(v.name ? { default: v.name, editable: true } : {}),
          validate: (value) => checkName(value),
        }),
    },
  ], {
    // The name and phone only arrive after the password: check it against them too.
    recheck: (v) => {
      const problem = checkPassword(v.password!, {
        email: v.email!,
        name: v.name!,
        phone: v.phone!,
      });
      return problem === null ? null : { key: "password", problem };
    },
    onProblem: (problem) => out.line(warnLine(style, `${problem}; choose another password`)),
  });
  const email = values.email!.trim();
  const result = await ctx.session.use((c) =>
    c.register({
      email,
      password: values.password!,
      name: values.name!.trim(),
      phone: values.phone!.trim(),
    })
  );
  out.line(okLine(style, `Registered ${style.bold(result.email)}`));
  const now = await prompter.confirm({ message: `Log in as ${result.email} now?`, default: true });
  if (!now) return "login";
  const me = await ctx.session.login(result.email, values.password!);
  out.line(okLine(style, `Logged in as ${style.bold(me.email)}`));
  return "upload";
}

/** Log in: email and password; a wrong password or a lock comes back as an error line. */
export async function loginAction(ctx: MenuContext): Promise<ActionId | void> {
  const { prompter, out, style, session } = ctx;
  const suggested = session.email ?? session.lastEmail ?? Deno.env.get("CLOUD_EMAIL");
  const values = await runForm([
    {
      key: "email",
      ask: (v) => {
        const fallback = v.email ?? suggested;
        return prompter.input({
          message: "Email",
          ...(fallback ? { default: fallback } : {}),
          validate: required("Email"),
        });
      },
    },
    {
      key: "password",
      ask: () => prompter.password({ message: "Password", validate: required("Password") }),
    },
  ]);
  const me = await session.login(values.email!.trim(), values.password!);
  out.line(okLine(style, `Logged in as ${style.bold(me.email)} (${me.name})`));
  return "list";
}

/** Change password: the current one, the new one (checked), its confirmation. */
export async function passwdAction(ctx: MenuContext): Promise<ActionId | void> {
  const { prompter, out, style, session } = ctx;
  const email = session.email ?? "";
  const name = session.name ?? undefined;
  const values = await runForm([
    {
      key: "current",
      ask: () => prompter.password({ message: "Current password", validate: required("Password") }),
    },
    {
      key: "next",
      ask: (v) =>
        prompter.password({
          message: "New password",
          validate: (value) =>
            value === v.current
              ? "The new password is the same as the current one"
              : checkPassword(value, { email, ...(name !== undefined ? { name } : {}) }),
        }),
    },
    {
      key: "confirm",
      ask: (v) =>
        prompter.password({
          message: "Confirm new password",
          validate: (value) =>
            value === v.next
              ? null
              : "The passwords differ: type the same one again (Esc to choose another)",
        }),
    },
  ]);
  try {
    await session.passwd(values.current!, values.next!);
  } catch (error) {
    if (error instanceof CloudError && error.code === "E_AUTH") {
      throw new CloudError("E_AUTH", "The current password is wrong; nothing changed");
    }
    throw error;
  }
  out.line(okLine(style, "Password changed"));
}

/** Log out and forget the credentials. */
export async function logoutAction(ctx: MenuContext): Promise<ActionId | void> {
  const email = ctx.session.email;
  await ctx.session.logout();
  ctx.out.line(okLine(ctx.style, `Logged out${email ? ` ${email}` : ""}`));
  return "login";
}

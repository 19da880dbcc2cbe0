/**
 * Account requests: register, login, whoami, passwd, logout (SPEC section 3).
 *
 * @module
 */

import { CloudError } from "../../protocol/errors.ts";
import type { HandlerTable, ServerContext, Session } from "../context.ts";
import {
  normaliseEmail,
  validateEmail,
  validateName,
  validatePassword,
  validatePhone,
} from "../validation.ts";

/** Writes one audit row and one log line for a security event. */
export async function recordEvent(
  ctx: ServerContext,
  event: string,
  fields: {
    email?: string | null;
    source?: string | null;
    userId?: number | null;
    detail?: string;
  },
): Promise<void> {
  ctx.log.event(event, {
    email: fields.email ?? undefined,
    src: fields.source ?? undefined,
    user: fields.userId ?? undefined,
    detail: fields.detail,
  });
  await ctx.store.audit({
    event,
    email: fields.email ?? null,
    source: fields.source ?? null,
    userId: fields.userId ?? null,
    detail: fields.detail ?? null,
    at: new Date(),
  });
}

const AUTH_FAILED = "Wrong email or password";

async function login(ctx: ServerContext, session: Session, rawEmail: string, password: string) {
  const email = normaliseEmail(rawEmail);
  const source = session.source;
  const user = email === "" ? null : await ctx.store.findUserByEmail(email);
  try {
    await ctx.guard.check(email, source, user?.id ?? null);
  } catch (error) {
    if (error instanceof CloudError) {
      await recordEvent(ctx, "auth_refused", {
        email,
        source: session.address,
        userId: user?.id,
        detail: error.code,
      });
    }
    throw error;
  }
  const ok = user
    ? await ctx.hasher.compare(password, user.passwordHash)
    : await ctx.hasher.dummyCompare(password);
  if (!user || !ok) {
    const outcome = await ctx.guard.recordFailure(email, source, user?.id ?? null);
    await recordEvent(ctx, "auth_fail", { email, source: session.address, userId: user?.id });
    if (outcome.blocked) {
      await recordEvent(ctx, "source_block", {
        email,
        source: session.address,
        detail: `until ${outcome.blocked.toISOString()}`,
      });
      throw new CloudError(
        "E_BLOCKED",
        `Too many failed logins from this address; blocked until ${outcome.blocked.toISOString()}`,
        { retryAt: outcome.blocked.toISOString() },
      );
    }
    if (outcome.locked) {
      await recordEvent(ctx, "account_lock", {
        email,
        source: session.address,
        detail: `until ${outcome.locked.toISOString()}`,
      });
      throw new CloudError(
        "E_LOCKED",
        `Too many failed logins for this account; locked until ${outcome.locked.toISOString()}`,
        { retryAt: outcome.locked.toISOString() },
      );
    }
    throw new CloudError("E_AUTH", AUTH_FAILED);
  }
  await ctx.guard.recordSuccess(email, source, user.id);
  await recordEvent(ctx, "auth_ok", { email, source: session.address, userId: user.id });
  session.userId = user.id;
  session.email = user.email;
  return user;
}

/** Handlers of the account requests. */
export const accountHandlers: HandlerTable = {
  register: async (ctx, session, request) => {
    const email = validateEmail(request.email);
    const name = validateName(request.name);
    const phone = validatePhone(request.phone);
    validatePassword(request.password, { email, name });
    const passwordHash = await ctx.hasher.hash(request.password);
    let id: number;
    try {
      id = await ctx.store.createUser({ name, email, phone, passwordHash });
    } catch (error) {
      if (error instanceof CloudError && error.code === "E_EXISTS") {
        await recordEvent(ctx, "register_exists", { email, source: session.address });
        throw new CloudError("E_EXISTS", `An account for "${email}" already exists`);
      }
      throw error;
    }
    await recordEvent(ctx, "register", { email, source: session.address, userId: id });
    return { email };
  },

  login: async (ctx, session, request) => {
    const user = await login(ctx, session, request.email, request.password);
    return { email: user.email, name: user.name };
  },

  whoami: async (ctx, session) => {
    const user = await ctx.store.findUserById(session.userId!);
    if (!user) throw new CloudError("E_NOT_LOGGED_IN", "This account no longer exists");
    return {
      id: user.id,
      email: user.email,
      name: user.name,
      phone: user.phone,
      createdAt: user.createdAt.toISOString(),
    };
  },

  passwd: async (ctx, session, request) => {
    const user = await ctx.store.findUserById(session.userId!);
    if (!user) throw new CloudError("E_NOT_LOGGED_IN", "This account no longer exists");
    // Re-check the current password through the same guard as login.
    await login(ctx, session, user.email, request.password);
    validatePassword(request.newPassword, { email: user.email, name: user.name });
    if (request.newPassword === request.password) {
      throw new CloudError("E_INVALID", "The new password must differ from the current one");
    }
    await ctx.store.setPasswordHash(user.id, await ctx.hasher.hash(request.newPassword));
    await recordEvent(ctx, "passwd", {
      email: user.email,
      source: session.address,
      userId: user.id,
    });
    return {};
  },

  logout: (ctx, session) => {
    ctx.log.event("logout", { email: session.email ?? undefined, src: session.address });
    session.userId = null;
    session.email = null;
    return Promise.resolve({});
  },
};

/**
 * `cloud admin`: works on the server host directly against the database and data
 * directory (users, unlock, unblock, quota, delete-user, fsck).
 *
 * @module
 */

import { CloudError } from "../protocol/errors.ts";
import { formatSize, parseSize } from "../protocol/units.ts";
import { UsageError } from "../client/options.ts";
import { defaultDbUrl, openStore } from "./db/open.ts";
import { LoginGuard } from "./lockout.ts";
import { sourceKey } from "./source.ts";
import { LocalStorage } from "./storage_local.ts";
import { runFsck } from "./fsck.ts";
import { normaliseEmail } from "./validation.ts";
import type { Store } from "./store.ts";

/** Options of `cloud admin`. */
export interface AdminOptions {
  data: string;
  db?: string;
  json?: boolean;
  repair?: boolean;
}

async function audit(store: Store, event: string, email: string | null, detail: string | null) {
  await store.audit({ event, email, source: "admin", userId: null, detail, at: new Date() });
}

async function userByEmail(store: Store, raw: string) {
  const user = await store.findUserByEmail(normaliseEmail(raw));
  if (!user) throw new CloudError("E_NOT_FOUND", `No account "${raw}"`);
  return user;
}

/** Runs one admin command; prints to stdout; resolves to the exit code. */
export async function runAdmin(
  name: string,
  args: string[],
  options: AdminOptions,
  print: (line: string) => void = (line) => console.log(line),
): Promise<number> {
  const store = await openStore(options.db ?? defaultDbUrl(options.data));
  try {
    const guard = new LoginGuard(store);
    switch (name) {
      case "users": {
        const rows = [];
        for (const user of await store.listUsers()) {
          const usage = await store.usage(user.id);
          const lock = await store.getEmailLock(user.email);
          rows.push({
            id: user.id,
            email: user.email,
            name: user.name,
            phone: user.phone,
            createdAt: user.createdAt.toISOString(),
            quota: user.quotaBytes,
            used: usage.bytes,
            files: usage.files,
            lockedUntil: lock.lockedUntil && lock.lockedUntil > new Date()
              ? lock.lockedUntil.toISOString()
              : null,
          });
        }
        if (options.json) {
          print(JSON.stringify(rows));
        } else {
          print(["ID", "EMAIL", "NAME", "PHONE", "USED", "QUOTA", "LOCKED UNTIL"].join("\t"));
          for (const r of rows) {
            print([
              r.id,
              r.email,
              r.name,
              r.phone,
              formatSize(r.used),
              r.quota === null ? "default" : formatSize(r.quota),
              r.lockedUntil ?? "-",
            ].join("\t"));
          }
        }
        return 0;
      }
      case "unlock": {
        const email = normaliseEmail(args[0] ?? "");
        await guard.unlock(email);
        await audit(store, "unlock", email, null);
        print(`Unlocked "${email}"`);
        return 0;
      }
      case "unblock": {
        const address = args[0] ?? "";
        let key: string;
        try {
          key = sourceKey(address);
        } catch {
          throw new UsageError(`Invalid address "${address}"`);
        }
        await guard.unblock(key);
        await audit(store, "unblock", null, key);
        print(`Unblocked ${key}`);
        return 0;
      }
      case "quota": {
        const user = await userByEmail(store, args[0] ?? "");
        const text = args[1] ?? "";
        let bytes: number | null;
        try {
          bytes = text === "default" ? null : parseSize(text);
        } catch (error) {
          throw new UsageError((error as Error).message);
        }
        await store.setQuota(user.id, bytes);
        await audit(store, "quota", user.email, bytes === null ? "default" : String(bytes));
        print(`Quota of ${user.email}: ${bytes === null ? "server default" : formatSize(bytes)}`);
        return 0;
      }
      case "delete-user": {
        const user = await userByEmail(store, args[0] ?? "");
        const storage = new LocalStorage(options.data);
        await storage.removeUser(user.id);
        await store.deleteUser(user.id);
        await audit(store, "delete_user", user.email, null);
        print(`Deleted ${user.email} and their files`);
        return 0;
      }
      case "fsck": {
        const storage = new LocalStorage(options.data);
        const report = await runFsck(store, storage, { repair: options.repair ?? false });
        for (const line of report.lines) print(line);
        return report.problems > 0 ? 1 : 0;
      }
      default:
        throw new UsageError(`Unknown admin command "${name}"`);
    }
  } finally {
    await store.close();
  }
}

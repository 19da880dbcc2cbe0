/**
 * `cloud admin fsck`: reconciles the files on disk with their database records.
 * Finds files without a record, records without a file, and size or SHA-256 mismatches;
 * with `repair`, records files that have no record, drops records of files that are gone,
 * and moves mismatched files into `<data>/quarantine/` (never re-recording bad bytes).
 *
 * @module
 */

import { createHash } from "node:crypto";
import type { Storage } from "./storage.ts";
import type { FileRecord, Store } from "./store.ts";

/** What fsck found and did. */
export interface FsckReport {
  /** Problems found. */
  problems: number;
  /** Problems fixed (with repair). */
  repaired: number;
  /** Files checked. */
  checked: number;
  /** One line per problem, then a summary. */
  lines: string[];
}

async function hashStream(stream: ReadableStream<Uint8Array>): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest("hex");
}

/** Runs the check over every user's files. */
export async function runFsck(
  store: Store,
  storage: Storage,
  options: { repair: boolean },
): Promise<FsckReport> {
  const report: FsckReport = { problems: 0, repaired: 0, checked: 0, lines: [] };
  const records = new Map<string, FileRecord>();
  for (const record of await store.allFiles()) {
    records.set(`${record.userId}\0${record.path}`, record);
  }
  const users = new Set((await store.listUsers()).map((u) => u.id));
  const problem = (line: string) => {
    report.problems++;
    report.lines.push(line);
  };

  for await (const file of storage.walk()) {
    report.checked++;
    const key = `${file.userId}\0${file.path}`;
    const record = records.get(key);
    records.delete(key);
    const where = `user ${file.userId}: "${file.path}"`;
    if (!users.has(file.userId)) {
      problem(`orphan file (no such user) ${where}`);
      continue;
    }
    let sha256: string;
    try {
      const { stream } = await storage.read(file.userId, file.path, 0);
      sha256 = await hashStream(stream);
    } catch (error) {
      problem(`unreadable ${where}: ${(error as Error).message}`);
      continue;
    }
    if (!record) {
      problem(`file without record ${where} (${file.size} bytes)`);
    } else if (record.size !== file.size || record.sha256 !== sha256) {
      problem(
        `mismatch ${where}: recorded ${record.size} bytes sha256:${record.sha256.slice(0, 12)}…, ` +
          `on disk ${file.size} bytes sha256:${sha256.slice(0, 12)}…`,
      );
      if (options.repair) {
        // The bytes are not what was stored: never bless them. Move them aside for the
        // administrator and drop the record, so the user sees the file gone, not corrupt.
        const moved = await storage.quarantine(file.userId, file.path);
        await store.deleteFile(file.userId, file.path);
        report.repaired++;
        report.lines.push(`  repaired: moved to ${moved}, record removed`);
      }
      continue;
    } else {
      continue;
    }
    if (options.repair) {
      await store.putFile({
        userId: file.userId,
        path: file.path,
        size: file.size,
        sha256,
        modified: file.modified,
      });
      report.repaired++;
      report.lines.push(`  repaired: recorded what is on disk`);
    }
  }

  for (const record of records.values()) {
    problem(`record without file user ${record.userId}: "${record.path}"`);
    if (options.repair) {
      await store.deleteFile(record.userId, record.path);
      report.repaired++;
      report.lines.push(`  repaired: record removed`);
    }
  }

  report.lines.push(
    `${report.checked} files checked, ${report.problems} problems` +
      (options.repair ? `, ${report.repaired} repaired` : ""),
  );
  return report;
}

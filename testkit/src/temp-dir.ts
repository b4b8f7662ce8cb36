import { mkdtempSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TempDir {
  path: string;
  /** Removes the directory (kept when TOLLGATE_KEEP_TMP=1, for post-mortems). */
  cleanup(): Promise<void>;
}

/** A fresh directory under the OS temp dir, e.g. `createTempDir("sync-")`. */
export async function createTempDir(prefix = "tollgate-"): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix.startsWith("tollgate") ? prefix : `tollgate-${prefix}`));
  return {
    path,
    cleanup: async () => {
      if (process.env.TOLLGATE_KEEP_TMP === "1") {
        console.log(`keeping ${path} (TOLLGATE_KEEP_TMP=1)`);
        return;
      }
      await rm(path, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    },
  };
}

/** A fresh directory under the OS temp dir, made and removed synchronously (unit tests). */
export function tempDir(prefix = "tollgate-gw-"): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

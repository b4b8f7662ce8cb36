import type { Migration } from "kysely";
import * as initial from "./2026-11-22T20-30-00_initial.js";

/** Every migration, listed explicitly so a bundle carries them; names sort by time. */
export const migrations: Record<string, Migration> = {
  "2026-11-22T20-30-00_initial": initial,
};

// Fleet quota bench: child processes and cleanup on exit and Ctrl-C.
import { rmSync } from "node:fs";
import { startChild as startLoggedChild, stopChild } from "@tollgate/testkit";
import { stopChildrenOnExit } from "./services.mjs";
import { say, settings } from "./quota-settings.mjs";

// ---------------------------------------------------------------- child processes and cleanup

const children = [];
let cleaning;
/**
 * What main sets up and cleanup undoes: the temp dir, the Postgres schema drop, and the
 * gateway's own estimatePromptTokens (gateway/dist/quota/estimate.js) the budget part uses.
 */
export const state = { tmpDir: undefined, dropSchema: null, estimate: undefined };

/** Spawns a Node script, its stdout and stderr to `<tmp>/<name>.log`. */
export function startChild(name, script, env, { ipc = false } = {}) {
  const entry = startLoggedChild(name, script, { logDir: state.tmpDir, env, ipc });
  children.push(entry);
  return entry;
}

export function cleanup() {
  cleaning ??= (async () => {
    // Gateways first (they give their leases back to the control plane), then the rest.
    const gateways = children.filter((c) => c.name.startsWith("gateway-"));
    await Promise.all(gateways.map((c) => stopChild(c, 5_000)));
    await Promise.all(children.map((c) => stopChild(c, 5_000)));
    if (state.dropSchema)
      await state.dropSchema().catch((err) => say(`could not drop the bench schema: ${err.message}`));
    if (state.tmpDir) {
      if (settings.keepTmp) say(`keeping ${state.tmpDir} (BENCH_KEEP_TMP=1)`);
      else rmSync(state.tmpDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    }
  })();
  return cleaning;
}

stopChildrenOnExit(children, cleanup, say);

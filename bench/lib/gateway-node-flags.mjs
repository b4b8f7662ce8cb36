// The node flags a gateway build starts with (its gateway/node-flags.json, as the image's CMD),
// so the benches run the gateway the way the image does. A checkout from before the file: none.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** @param {string} root a checkout (built or not) @returns {string[]} */
export function gatewayNodeFlags(root) {
  const file = join(root, "gateway", "node-flags.json");
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")).flags : [];
}

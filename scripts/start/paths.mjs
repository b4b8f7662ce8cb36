// Where the newcomer's stack keeps its files and finds the built services.
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const dataDir = join(root, ".data");
export const masterKeyFile = join(dataDir, "master-key");
export const gatewayTokenFile = join(dataDir, "gateway-token.json");
export const controlPlaneMain = join(root, "control-plane", "dist", "main.js");
export const gatewayMain = join(root, "gateway", "dist", "main.js");
export const rel = (p) => relative(process.cwd(), p) || ".";

import { routeGroup } from "../../http/route.js";
import { createKey, createKeys } from "./create.js";
import { deleteKey } from "./delete.js";
import { issueEphemeralToken } from "./ephemeral-tokens.js";
import { getKey, listKeys } from "./read.js";
import { rotateKey } from "./rotate.js";
import { changeKeyStatus, updateKey } from "./update.js";

/** The API key endpoints, in the order the router matches them. */
export const apiKeyRoutes = routeGroup("api-keys", [
  createKey,
  createKeys,
  listKeys,
  getKey,
  updateKey,
  ...changeKeyStatus,
  rotateKey,
  issueEphemeralToken,
  deleteKey,
]);

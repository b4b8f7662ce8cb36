export * from "./api-key.js";
export * from "./base62.js";
export * from "./config-helpers.js";
export * from "./errors.js";
export * from "./ids.js";
export * from "./logger.js";
export * from "./version.js";
export * from "./gen/tollgate/sync/v1/sync_pb.js";

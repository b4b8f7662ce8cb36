// @tollgate/testkit: the one home of test support for unit tests, test/,
// bench/ and scripts/start.mjs. It depends on @tollgate/shared only; the
// services are started from their built dist/, never imported.
export * from "./certs.js";
export * from "./children.js";
export * from "./clock.js";
export * from "./database.js";
export * from "./fake-anthropic.js";
export * from "./fake-control-plane.js";
export * from "./fake-openai.js";
export * from "./fake-openai-responses.js";
export * from "./fake-openai-upstream.js";
export * from "./fuzz.js";
export * from "./http.js";
export * from "./keys.js";
export * from "./logger.js";
export * from "./openai-wire.js";
export * from "./processes.js";
export * from "./raw-http.js";
export * from "./services.js";
export * from "./tcp-relay.js";
export * from "./temp-dir.js";
export * from "./wait.js";
export * from "./thrown.js";

// @hono/node-server as Portkey sees it under the bench (see preload.mjs): the
// real module, with overrideGlobalObjects: false unless the caller says otherwise.
import * as real from "bench-real:@hono/node-server";

export * from "bench-real:@hono/node-server";

export function serve(options, listeningListener) {
  return real.serve({ overrideGlobalObjects: false, ...options }, listeningListener);
}

export function createAdaptorServer(options) {
  return real.createAdaptorServer({ overrideGlobalObjects: false, ...options });
}

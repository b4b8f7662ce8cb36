// Resolve hook for the Portkey child (registered by preload.mjs): Portkey's
// imports of @hono/node-server go to node-server-shim.mjs, which re-exports the
// real one (resolved from the importer's own location, so Portkey's own
// dependency) with overrideGlobalObjects: false as the default of serve() and
// createAdaptorServer().
const SHIM = new URL("./node-server-shim.mjs", import.meta.url).href;
const REAL = "bench-real:@hono/node-server";
let importer;

export async function resolve(specifier, context, nextResolve) {
  if (specifier === REAL) return nextResolve("@hono/node-server", { ...context, parentURL: importer });
  if (specifier === "@hono/node-server") {
    importer ??= context.parentURL;
    return { url: SHIM, shortCircuit: true };
  }
  return nextResolve(specifier, context);
}

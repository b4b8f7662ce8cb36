// Preloaded into the Portkey child (`node --import bench/portkey/preload.mjs`)
// by gateway-throughput.mjs, and only when BENCH_PORTKEY_SHIM is not "0".
//
// Why: @portkey-ai/gateway 1.15.2 fails every streaming chat completion under
// Node with 500 {"status":"failure","message":"Something went wrong"}; its log
// says "tryTargetsRecursively error: immutable … TypeError: immutable at
// _Headers.append … at ResponseService.updateHeaders". Its Node server,
// @hono/node-server (1.19.x installed for Portkey's "^1.3.3"; 1.14.2 does the
// same), replaces the global Response with a lightweight one on serve(); Portkey
// wraps the upstream's fetch Response in `new Response(stream, upstreamResponse)`,
// the lightweight Response keeps the upstream's headers object, whose guard is
// "immutable", and updateHeaders() then appends x-portkey-* headers to it.
// Upstream reports: Portkey-AI/gateway#1389 and #1550 (open).
//
// What this changes: every import of @hono/node-server in the Portkey process
// gets serve()/createAdaptorServer() with `overrideGlobalObjects: false` (a
// documented @hono/node-server option), so Response stays Node's own and its
// headers are mutable. Nothing else in Portkey is touched.
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);

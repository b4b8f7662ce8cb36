import { setFlagsFromString } from "node:v8";

/**
 * V8 settings for the gateway process, applied before anything else loads
 * (main.ts imports this module first).
 *
 * No allocation-site pretenuring. Under load V8 decided to allocate some of
 * the request path's short-lived objects straight in old space; dead there,
 * they keep the young objects they point to alive through every scavenge
 * until the next mark-compact. Measured at one connection (`--trace-gc-nvp`,
 * bench/README.md): each scavenge promoted 1.0-1.2 MB of 11-12.7 MB (about
 * 10 %) and paused 1.6-4 ms; without pretenuring 0.13 MB and about 0.8 ms,
 * with a lower peak RSS and no more CPU per request. The flag is read at
 * each GC, so setting it at start-up takes effect.
 */
setFlagsFromString("--no-allocation-site-pretenuring");

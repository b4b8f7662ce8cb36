import { setFlagsFromString } from "node:v8";

/**
 * V8 settings for the gateway process, applied before anything else loads
 * (main.ts imports this module first). Heap sizes are fixed when V8 starts,
 * so they are node flags instead: gateway/node-flags.json (the young
 * generation's size, for RSS under load; bench/README.md, "gateway RSS").
 *
 * No allocation-site pretenuring. Under load V8 decided to allocate some of
 * the request path's short-lived objects straight in old space; dead there,
 * they keep the young objects they point to alive through every scavenge
 * until the next mark-compact, so every scavenge promotes more and pauses
 * longer. Without pretenuring, scavenges promote less and pause less, with a
 * lower peak RSS and no more CPU per request (measured with `--trace-gc-nvp`,
 * see bench/README.md). The flag is read at each GC, so setting it at
 * start-up takes effect.
 */
setFlagsFromString("--no-allocation-site-pretenuring");

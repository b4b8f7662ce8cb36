import { PassThrough } from "node:stream";
import { createLogger, type Logger } from "@tollgate/shared";

/** A logger whose JSON lines the test can read. */
export function capturedLogger(name = "gateway"): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on("data", (b: Buffer) => {
    for (const l of b.toString("utf8").split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  return { logger: createLogger({ name, level: "debug", destination: stream }), lines };
}

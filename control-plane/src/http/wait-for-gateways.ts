import { AppError, parseDurationMs } from "@tollgate/shared";
import type { Context } from "koa";

const MAX_WAIT_FOR_GATEWAYS_MS = 60_000;

/** Reads `?wait_for_gateways=5s` (`0` opts out of the default wait); undefined when absent. */
export function waitForGatewaysParam(ctx: Context): number | undefined {
  const raw = ctx.query.wait_for_gateways;
  if (raw === undefined) return undefined;
  const ms = raw === "0" ? 0 : typeof raw === "string" ? parseDurationMs(raw) : undefined;
  if (ms === undefined || ms > MAX_WAIT_FOR_GATEWAYS_MS) {
    throw new AppError("invalid_request", "wait_for_gateways must be a duration up to 60s, such as 500ms or 5s", {
      field: "wait_for_gateways",
    });
  }
  return ms;
}

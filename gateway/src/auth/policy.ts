import type { KeyRecord } from "./key-index.js";
import { ipInList } from "@tollgate/shared";
import { modelAllowed } from "./model-matcher.js";

/** Which scope refused a request; a bounded metric label. */
export type PolicyRule = "provider" | "model" | "ip";

export type PolicyCode = "provider_not_allowed" | "model_not_allowed" | "ip_not_allowed";

/** A scope's refusal, in words the client can act on. */
export interface PolicyDenial {
  rule: PolicyRule;
  code: PolicyCode;
  message: string;
  /** The request parameter at fault, if any (OpenAI's `param`). */
  param: string | null;
}

const MAX_LISTED = 20;
const MAX_QUOTED = 200;

/** A synced list for a message: the first few entries, then how many more. */
function listed(values: readonly string[]): string {
  const shown = values.slice(0, MAX_LISTED).join(", ");
  return values.length > MAX_LISTED ? `${shown}, and ${values.length - MAX_LISTED} more` : shown;
}

/** Client input quoted in a message, bounded. */
function quoted(value: string): string {
  return `'${value.length > MAX_QUOTED ? `${value.slice(0, MAX_QUOTED)}...` : value}'`;
}

/** allowed_providers against the provider serving this gateway; null when allowed. */
export function checkProvider(key: KeyRecord, provider: string): PolicyDenial | null {
  if (key.allowedProviders === null || key.allowedProviders.has(provider)) return null;
  return {
    rule: "provider",
    code: "provider_not_allowed",
    message: `This API key may not use provider ${quoted(provider)} (allowed_providers: ${listed(key.policy.allowedProviders)}).`,
    param: null,
  };
}

/** allowed_models against a requested model; null when allowed. */
export function checkModel(key: KeyRecord, model: string): PolicyDenial | null {
  if (modelAllowed(key.allowedModels, model)) return null;
  return {
    rule: "model",
    code: "model_not_allowed",
    message: `This API key may not use model ${quoted(model)} (allowed_models: ${listed(key.policy.allowedModels)}).`,
    param: "model",
  };
}

/** A key limited to some models, on a request that names none (a stored prompt picks it). */
export function modelRequiredDenial(key: KeyRecord): PolicyDenial {
  return {
    rule: "model",
    code: "model_not_allowed",
    message: `This API key may only use some models (allowed_models: ${listed(key.policy.allowedModels)}): name the model in the request, as a stored prompt's model cannot be checked.`,
    param: "model",
  };
}

/** ip_allowlist against the client's address (null: unknown, refused by any allowlist); null when allowed. */
export function checkIp(key: KeyRecord, clientIp: string | null): PolicyDenial | null {
  if (key.ipAllowlist === null) return null;
  if (clientIp !== null && ipInList(key.ipAllowlist, clientIp)) return null;
  return {
    rule: "ip",
    code: "ip_not_allowed",
    message:
      clientIp === null
        ? "Requests from an unknown client address are not allowed for this API key (ip_allowlist)."
        : `Requests from ${clientIp} are not allowed for this API key (ip_allowlist).`,
    param: null,
  };
}

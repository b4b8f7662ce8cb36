import { isIP } from "node:net";
import { z } from "zod";
import { DEFAULT_KEY_SETTINGS, type ApiKeySettings } from "../../repositories/api-keys.js";
import { displayName, expiresAt, idOf } from "../../http/schemas.js";

/** Validation of every key field; each error names its field. */
const positiveLimit = z
  .number({ error: "must be an integer or null" })
  .int("must be an integer")
  .min(1, "must be at least 1")
  .max(Number.MAX_SAFE_INTEGER)
  .nullable();

const slug = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, "must be a provider name such as openai or anthropic");

/** Exact model names or globs with `*` and `?` only. */
export const modelPattern = z
  .string()
  .min(1, "must not be empty")
  .max(200, "must be at most 200 characters")
  .refine((v) => !/\s/.test(v), "must not contain spaces")
  .refine((v) => !/[[\]{}!\\]/.test(v), "only * and ? wildcards are supported in model globs")
  .refine(
    (v) => v.replace(/[*?]/g, "") !== "" || v === "*",
    "a glob needs at least one literal character (or exactly *)",
  );

/** An IPv4/IPv6 address or CIDR, normalised for comparison later. */
export const ipOrCidr = z.string().superRefine((value, ctx) => {
  const [addr, prefix, ...rest] = value.split("/");
  const family = isIP(addr ?? "");
  if (rest.length > 0 || family === 0) {
    ctx.addIssue({ code: "custom", message: `${JSON.stringify(value)} is not an IP address or CIDR` });
    return;
  }
  if (prefix !== undefined) {
    const bits = Number(prefix);
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(prefix) || bits > max) {
      ctx.addIssue({ code: "custom", message: `${JSON.stringify(value)} has an invalid prefix length (0-${max})` });
    }
  }
});

const thresholds = z
  .array(
    z
      .number()
      .int("must be whole percentages")
      .min(1, "must be between 1 and 1000")
      .max(1000, "must be between 1 and 1000"),
  )
  .max(10, "at most 10 thresholds")
  .refine((a) => a.every((v, i) => i === 0 || v > a[i - 1]!), "must be strictly ascending, e.g. [50, 80, 100]");

const metadata = z
  .record(z.string(), z.unknown(), { error: "must be a JSON object" })
  .refine((m) => JSON.stringify(m).length <= 16_384, "must be at most 16 KiB of JSON");

const mcpName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[\w.:-]+$/, "must be an MCP server or tool name (letters, digits, _ . : -)");

const settingsShape = {
  expires_at: expiresAt.optional(),
  rpm_limit: positiveLimit.optional(),
  tpm_limit: positiveLimit.optional(),
  tokens_per_day_limit: positiveLimit.optional(),
  max_concurrent_requests: positiveLimit.optional(),
  budget_period: z.enum(["total", "daily", "monthly"], { error: "must be total, daily or monthly" }).optional(),
  budget_usd: z
    .number({ error: "must be a number or null" })
    .positive("must be more than 0")
    .max(1e9)
    .nullable()
    .optional(),
  budget_alert_thresholds: thresholds.optional(),
  allowed_providers: z.array(slug).max(50).optional(),
  allowed_models: z.array(modelPattern).max(200).optional(),
  ip_allowlist: z.array(ipOrCidr).max(200).optional(),
  metadata: metadata.optional(),
  mcp_enabled: z.boolean().optional(),
  mcp_access_mode: z.enum(["allow_all", "deny_all", "allow_list", "deny_list"]).optional(),
  mcp_servers: z.array(mcpName).max(200).optional(),
  mcp_tools: z.record(mcpName, z.array(mcpName).max(500)).optional(),
};

function budgetRule(
  v: { budget_usd?: number | null | undefined; budget_alert_thresholds?: number[] | undefined },
  ctx: z.RefinementCtx,
) {
  if (v.budget_alert_thresholds?.length && (v.budget_usd === null || v.budget_usd === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["budget_alert_thresholds"],
      message: "needs budget_usd: thresholds are percentages of the budget",
    });
  }
}

export const createKeySchema = z
  .strictObject({ name: displayName, user_id: idOf("user"), ...settingsShape })
  .superRefine(budgetRule);

export const patchKeySchema = z
  .strictObject({ name: displayName.optional(), ...settingsShape })
  .superRefine((v, ctx) => {
    if (Object.keys(v).length === 0) ctx.addIssue({ code: "custom", message: "send at least one field to change" });
  });

export type CreateKeyInput = z.infer<typeof createKeySchema>;

/** Full settings for a new key: defaults, then what the admin sent. */
export function settingsFrom(input: Partial<CreateKeyInput>): ApiKeySettings {
  const out: ApiKeySettings = { ...DEFAULT_KEY_SETTINGS };
  for (const k of Object.keys(DEFAULT_KEY_SETTINGS) as Array<keyof ApiKeySettings>) {
    if (input[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = input[k];
  }
  return out;
}

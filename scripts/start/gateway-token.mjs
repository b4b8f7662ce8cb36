// The gateway's token: reuse the saved one while the control plane still knows
// it, else create and save a new one.
import { existsSync, readFileSync } from "node:fs";
import { fail } from "./children.mjs";
import { writeSecret } from "./config.mjs";
import { info, warn } from "./output.mjs";
import { gatewayTokenFile, masterKeyFile, rel } from "./paths.mjs";

export async function api(baseUrl, masterKey, method, path, body) {
  let res;
  try {
    res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${masterKey}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(10_000),
    });
  } catch (err) {
    return fail(
      `could not reach the control plane at ${baseUrl}${path}: ${err.message}`,
      "see the [control-plane] log lines above",
    );
  }
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  if (res.status === 401 || res.status === 403) {
    return fail(
      `the control plane rejected the master key (${method} ${path} → ${res.status})`,
      `the key this script used differs from the one the control plane runs with; check PROXY_MASTER_KEY and ${rel(masterKeyFile)}`,
    );
  }
  return { status: res.status, body: json };
}

export async function ensureGatewayToken(adminUrl, masterKey) {
  let gwToken;
  if (existsSync(gatewayTokenFile)) {
    let saved;
    try {
      saved = JSON.parse(readFileSync(gatewayTokenFile, "utf8"));
    } catch {
      warn(`${rel(gatewayTokenFile)} is not valid JSON; creating a new gateway token`);
    }
    if (saved?.id && saved?.token) {
      let found = false;
      let cursor;
      const seenCursors = new Set();
      for (let page = 0; page < 50 && !found; page++) {
        const r = await api(
          adminUrl,
          masterKey,
          "GET",
          `/internal/gateway-tokens${cursor ? `?cursor=${encodeURIComponent(cursor)}` : ""}`,
        );
        if (r.status !== 200)
          await fail(
            `listing gateway tokens failed: ${r.status} ${JSON.stringify(r.body)}`,
            "see the [control-plane] log lines above",
          );
        found = (r.body?.data ?? []).some((t) => t.id === saved.id);
        cursor = r.body?.next_cursor;
        if (!cursor || seenCursors.has(cursor)) break;
        seenCursors.add(cursor);
      }
      if (found) {
        gwToken = saved;
        info(`reusing gateway token ${saved.id} (${saved.token_prefix ?? "saved"}) from ${rel(gatewayTokenFile)}`);
      } else {
        warn(
          `the saved gateway token ${saved.id} is no longer known to the control plane (revoked, or a different database); creating a new one`,
        );
      }
    }
  }
  if (!gwToken) {
    const r = await api(adminUrl, masterKey, "POST", "/internal/gateway-tokens", { name: "local" });
    if (r.status !== 200 && r.status !== 201)
      await fail(
        `creating a gateway token failed: ${r.status} ${JSON.stringify(r.body)}`,
        "see the [control-plane] log lines above",
      );
    if (!r.body?.token || !r.body?.id)
      await fail(`the control plane answered a gateway token without id/token: ${JSON.stringify(r.body)}`);
    gwToken = {
      id: r.body.id,
      name: r.body.name,
      token: r.body.token,
      token_prefix: r.body.token_prefix,
      created_at: r.body.created_at,
    };
    writeSecret(gatewayTokenFile, `${JSON.stringify(gwToken, null, 2)}\n`);
    info(`created gateway token ${gwToken.id} and saved it to ${rel(gatewayTokenFile)} (mode 0600)`);
  }
  return gwToken;
}

// Fleet quota bench: the client side: chat requests and how load is spread over gateways.
import http from "node:http";
import { performance } from "node:perf_hooks";

// ---------------------------------------------------------------- the client side

/**
 * One chat completion through a gateway. Resolves { status, json, t0, t1 } (ms,
 * performance.now()); a network error or a 15 s timeout resolves status 0.
 */
export function chat(gw, apiKey, body, parse) {
  const payload = Buffer.from(JSON.stringify(body));
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: gw.port,
        method: "POST",
        path: "/v1/chat/completions",
        agent: gw.agent,
        headers: {
          authorization: `Bearer ${apiKey}`,
          "content-type": "application/json",
          "content-length": payload.length,
        },
        timeout: 15_000,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          let json = null;
          if (parse || res.statusCode !== 200) {
            try {
              json = JSON.parse(Buffer.concat(chunks).toString("utf8"));
            } catch {
              // not JSON
            }
          }
          resolve({ status: res.statusCode, json, t0, t1: performance.now() });
        });
        res.on("error", (err) => resolve({ status: 0, json: { error: err.message }, t0, t1: performance.now() }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", (err) => resolve({ status: 0, json: { error: err.message }, t0, t1: performance.now() }));
    req.end(payload);
  });
}

/**
 * The gateway a request goes to: a share `skew` to gateway 0, the rest spread
 * evenly over the others. A low-discrepancy sequence (golden ratio) mixes them
 * evenly over time, deterministically.
 */
export function targetOf(i, n, skew) {
  if (n === 1) return 0;
  const u = (i * 0.6180339887498949) % 1;
  if (u < skew) return 0;
  return 1 + Math.min(n - 2, Math.floor(((u - skew) / (1 - skew)) * (n - 1)));
}

export const prompt = (i) => `Summarize ticket #${i} in one short sentence for the weekly report.`;

// Gateway throughput bench: load generation with autocannon, per target and mode.
import autocannon from "autocannon";
import { performance } from "node:perf_hooks";
import { UPSTREAM_KEY } from "./services.mjs";
import { fmtInt, round1, rssOf, Samples } from "./proc-stats.mjs";
import { run } from "./throughput-runtime.mjs";
import { BODIES, MB, progress } from "./throughput-settings.mjs";

// ---------------------------------------------------------------- load

export function targetRequest(target, endpoints, apiKey) {
  const json = { "content-type": "application/json" };
  switch (target) {
    case "direct":
      return {
        url: `${endpoints.upstream}/v1/chat/completions`,
        headers: { ...json, authorization: `Bearer ${UPSTREAM_KEY}` },
      };
    case "node-proxy":
    case "bare":
    case "same-work":
      return {
        url: `${endpoints[target]}/v1/chat/completions`,
        headers: { ...json, authorization: `Bearer ${UPSTREAM_KEY}` },
      };
    case "tollgate":
    case "baseline":
      return {
        url: `${endpoints[target]}/v1/chat/completions`,
        headers: { ...json, authorization: `Bearer ${apiKey}` },
      };
    case "portkey":
      return {
        url: `${endpoints.portkey}/v1/chat/completions`,
        headers: {
          ...json,
          authorization: `Bearer ${UPSTREAM_KEY}`,
          "x-portkey-provider": "openai",
          "x-portkey-custom-host": `${endpoints.upstream}/v1`,
        },
      };
    default:
      throw new Error(target);
  }
}

/** One request through `target`: status, and whether the answer carries the upstream's usage. */
export async function sanity(target, mode, req) {
  const res = await fetch(req.url, { method: "POST", headers: req.headers, body: BODIES[mode] });
  const text = await res.text();
  const ok =
    res.status === 200 &&
    (mode === "plain"
      ? JSON.parse(text)?.usage?.total_tokens === 21
      : text.includes('"total_tokens":21') && text.includes("data: [DONE]"));
  return {
    target,
    mode,
    status: res.status,
    ok,
    content_type: res.headers.get("content-type"),
    bytes: Buffer.byteLength(text),
    sample: ok ? undefined : text.slice(0, 400),
  };
}

/** One autocannon run; latencies of 2xx answers recorded in float ms. */
export function load(req, mode, connections, durationS, label) {
  return new Promise((resolve, reject) => {
    const samples = new Samples();
    let non2xx = 0;
    const started = performance.now();
    const cpu0 = process.cpuUsage();
    const instance = autocannon(
      {
        url: req.url,
        method: "POST",
        headers: req.headers,
        body: BODIES[mode],
        connections,
        pipelining: 1,
        duration: durationS,
        timeout: 10,
      },
      (err, result) => {
        clearInterval(ticker);
        run.currentLoad = undefined;
        if (err) return reject(err);
        const elapsedS = (performance.now() - started) / 1000;
        const cpu = process.cpuUsage(cpu0);
        // This process (autocannon + sampling) as a share of one core.
        const driverCpuPct = Math.round(((cpu.user + cpu.system) / 1e6 / elapsedS) * 100);
        resolve({ samples, result, elapsedS, non2xx, driverCpuPct });
      },
    );
    run.currentLoad = instance;
    instance.on("response", (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) samples.push(responseTime);
      else non2xx++;
    });
    const ticker = setInterval(() => {
      const t = (performance.now() - started) / 1000;
      const rss = rssOf(pidOfTarget.get(label.target) ?? 0);
      progress(
        `${label.prefix} ${t.toFixed(1)}/${durationS} s  ${fmtInt(samples.length)} ok  ${fmtInt(samples.length / Math.max(t, 0.001))} req/s` +
          (label.target !== "direct" && rss !== null ? `  RSS ${round1(rss / MB)} MB` : ""),
      );
    }, 250);
  });
}

export const pidOfTarget = new Map();

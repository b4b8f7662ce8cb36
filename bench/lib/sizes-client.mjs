// Payload-size bench: a keep-alive HTTP client that times each request (first byte and whole answer).
import { Agent, request } from "node:http";
import { performance } from "node:perf_hooks";
import { Samples } from "./proc-stats.mjs";

/** One request: resolves { status, ttfb (ms, first body byte), total (ms), bytes }. */
function once(agent, url, headers, body) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let ttfb = null;
    let bytes = 0;
    const req = request(
      url,
      { method: "POST", agent, headers: { ...headers, "content-length": body.length } },
      (res) => {
        res.on("data", (c) => {
          if (ttfb === null) ttfb = performance.now() - t0;
          bytes += c.length;
        });
        res.on("end", () => resolve({ status: res.statusCode, ttfb, total: performance.now() - t0, bytes }));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/**
 * Sends `body` to `target` from `connections` sequential loops for `seconds` (and at least
 * `minRequests` requests): latencies of 2xx answers, and the count of the others.
 */
export async function timedRun({ url, headers }, body, { seconds, minRequests, connections }) {
  const agent = new Agent({ keepAlive: true, maxSockets: connections });
  const total = new Samples();
  const ttfb = new Samples();
  let non2xx = 0;
  let sample = null;
  let bytes = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let sent = 0;
  const loop = async () => {
    while (performance.now() < deadline || sent < minRequests) {
      sent++;
      const r = await once(agent, url, headers, body);
      if (r.status >= 200 && r.status < 300) {
        total.push(r.total);
        if (r.ttfb !== null) ttfb.push(r.ttfb);
        bytes = r.bytes;
      } else {
        non2xx++;
        sample ??= r.status;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: connections }, loop));
  } finally {
    agent.destroy();
  }
  return {
    total,
    ttfb,
    non2xx,
    firstNon2xx: sample,
    answerBytes: bytes,
    elapsedS: (performance.now() - started) / 1000,
  };
}

/** One request through `target`, for the sanity check: status and the first bytes of a refusal. */
export async function probe({ url, headers }, body) {
  const res = await fetch(url, { method: "POST", headers, body });
  const text = await res.text();
  return {
    status: res.status,
    ok: res.status === 200,
    bytes: text.length,
    usage: text.includes('"total_tokens":21'),
    sample: res.status === 200 ? undefined : text.slice(0, 300),
  };
}

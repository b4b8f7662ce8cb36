import { performance } from "node:perf_hooks";
import { UpstreamError, type Provider, type ProviderRequest, type ProviderResponse } from "./types.js";

/** Upstream answers worth trying elsewhere: overload and server failures, never the caller's own mistakes. */
export function retryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

function elapsed(since: number): number {
  return Math.round((performance.now() - since) * 1000) / 1000;
}

/** The only provider's call, its attempt noted as the chain's loop notes the last of its tries. */
function callOne(p: Provider, req: ProviderRequest): Promise<ProviderResponse> {
  const started = performance.now();
  let call: Promise<ProviderResponse>;
  try {
    call = p.call(req);
  } catch (err) {
    // A synchronous throw is handled as a rejection, as the chain's loop handles it.
    call = Promise.reject(err);
  }
  return call.then(
    (res) => {
      req.onAttempt?.({ provider: p.name, status: res.status, latencyMs: elapsed(started), fellBack: false });
      return res;
    },
    (err: unknown) => {
      if (err instanceof UpstreamError && !req.signal.aborted)
        req.onAttempt?.({ provider: p.name, reason: err.reason, latencyMs: elapsed(started), fellBack: false });
      throw err;
    },
  );
}

/**
 * A provider that tries `chain` in order: the next one when a call ends in a
 * 5xx, a 429, a timeout or a connection failure, up to `maxAttempts` calls.
 * It answers as soon as one upstream sends its response head, so a stream is
 * never retried once a byte of it could have reached the client; the last
 * failure (status and body, or the error) is what the client gets. Providers
 * that do not serve the endpoint, or that the caller may not use, are skipped.
 */
export function withFallbacks(chain: readonly Provider[], maxAttempts: number): Provider {
  const primary = chain[0]!;
  return {
    name: primary.name,
    kind: primary.kind,
    endpoints: primary.endpoints,
    // A chain of one (no fallbacks configured, the common case): one call, its attempt noted,
    // without an async function's frame and promise around it.
    call:
      chain.length === 1
        ? (req) => callOne(primary, req)
        : async (req) => {
            const tries = chain
              .filter((p, i) => i === 0 || (p.endpoints.has(req.endpoint) && (req.mayUse?.(p.name) ?? true)))
              .slice(0, maxAttempts);
            for (let i = 0; ; i++) {
              const p = tries[i]!;
              const last = i === tries.length - 1;
              const started = performance.now();
              let res: ProviderResponse;
              try {
                res = await p.call(req);
              } catch (err) {
                // The client leaving, or a gateway bug, is no reason to call someone else.
                if (!(err instanceof UpstreamError) || req.signal.aborted) throw err;
                req.onAttempt?.({ provider: p.name, reason: err.reason, latencyMs: elapsed(started), fellBack: !last });
                if (last) throw err;
                continue;
              }
              const fellBack = !last && retryableStatus(res.status) && !req.signal.aborted;
              req.onAttempt?.({ provider: p.name, status: res.status, latencyMs: elapsed(started), fellBack });
              if (!fellBack) return res;
              res.discard?.();
            }
          },
    ...(primary.listModels ? { listModels: primary.listModels.bind(primary) } : {}),
    // The chain's providers belong to the registry, which closes them.
    close: async () => {},
  };
}

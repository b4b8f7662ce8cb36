import type { Provider, UpstreamModel } from "./types.js";

/** How long an upstream's model list is trusted before it is asked again. */
const TTL_MS = 5 * 60_000;

interface Entry {
  atMs: number;
  models: Promise<readonly UpstreamModel[]>;
}

/**
 * The model lists Anthropic-format upstreams publish (GET /v1/models), kept
 * a few minutes: they route models no configured name or pattern claims
 * (item 6 of issue 21) and answer Anthropic clients' model lists. A failed
 * fetch is forgotten at once, so the next request asks again.
 */
export class UpstreamModelLists {
  private readonly entries = new Map<Provider, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The provider's list, fetched when missing or older than TTL_MS; rejects with the upstream's failure. */
  of(provider: Provider, requestId: string): Promise<readonly UpstreamModel[]> {
    const fetchList = provider.listNativeModels;
    if (fetchList === undefined) return Promise.resolve([]);
    const cached = this.entries.get(provider);
    if (cached && this.now() - cached.atMs < TTL_MS) return cached.models;
    const models = fetchList.call(provider, requestId);
    const entry = { atMs: this.now(), models };
    this.entries.set(provider, entry);
    models.catch(() => {
      if (this.entries.get(provider) === entry) this.entries.delete(provider);
    });
    return models;
  }
}

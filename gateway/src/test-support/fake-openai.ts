import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface SeenOpenAiRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/** The model list the fake serves at GET /v1/models. */
export const FAKE_OPENAI_MODELS = ["gpt-4o-mini", "text-embedding-3-small", "claude-lookalike"];

/**
 * A small stand-in for api.openai.com: chat completions (no streaming),
 * embeddings (float or base64, as the openai SDK asks), and the model list.
 */
export class FakeOpenAi {
  readonly seen: SeenOpenAiRequest[] = [];
  url = "";
  private server: Server | undefined;

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private json(res: ServerResponse, status: number, value: unknown): void {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(value));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    this.seen.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body });
    if (req.method === "GET" && req.url === "/v1/models") {
      this.json(res, 200, { object: "list", data: FAKE_OPENAI_MODELS.map((id) => ({ id, object: "model", created: 1, owned_by: "openai" })) });
      return;
    }
    const parsed = JSON.parse(body) as { model: string; input?: unknown; encoding_format?: string };
    if (req.url === "/v1/embeddings") {
      const inputs = Array.isArray(parsed.input) ? parsed.input : [parsed.input];
      const vector = [0.25, -0.5, 1];
      const embedding = parsed.encoding_format === "base64" ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector;
      this.json(res, 200, {
        object: "list",
        data: inputs.map((_, index) => ({ object: "embedding", index, embedding })),
        model: parsed.model,
        usage: { prompt_tokens: 4, total_tokens: 4 },
      });
      return;
    }
    if (req.url === "/v1/chat/completions") {
      this.json(res, 200, {
        id: "chatcmpl-fake",
        object: "chat.completion",
        created: 1,
        model: parsed.model,
        choices: [{ index: 0, message: { role: "assistant", content: "Hello from the fake OpenAI." }, finish_reason: "stop", logprobs: null }],
        usage: { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 },
      });
      return;
    }
    this.json(res, 404, { error: { message: `Unknown path ${req.url}`, type: "invalid_request_error", param: null, code: "unknown_url" } });
  }
}

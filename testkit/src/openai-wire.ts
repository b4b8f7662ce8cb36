// OpenAI's wire format, once, for every fake upstream (the in-process fakes
// here and the benchmarks' child-process upstreams, which import this module
// alone through "@tollgate/testkit/openai-wire" to stay small).

/** One server-sent event as OpenAI frames a chat stream. */
export function sseData(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

/** The event that ends every OpenAI stream. */
export const SSE_DONE = "data: [DONE]\n\n";

/** OpenAI's error body. */
export function openAiErrorBody(
  message: string,
  type: string,
  code: string | null = null,
  param: string | null = null,
): { error: { message: string; type: string; param: string | null; code: string | null } } {
  return { error: { message, type, param, code } };
}

/** GET /v1/models. */
export function modelList(
  ids: readonly string[],
  { created, ownedBy }: { created: number; ownedBy: string },
): { object: "list"; data: Array<{ id: string; object: "model"; created: number; owned_by: string }> } {
  return { object: "list", data: ids.map((id) => ({ id, object: "model", created, owned_by: ownedBy })) };
}

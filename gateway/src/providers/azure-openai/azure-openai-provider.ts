import {
  OPENAI_PATHS,
  RESPONSES_ENDPOINTS,
  createOpenAiCompatibleProvider,
  type OpenAiEndpoint,
} from "../openai/openai-provider.js";
import { ModelNotCallableError, type Provider, type ProviderRequest } from "../types.js";

/** Azure deployment names: letters, digits, `_`, `.`, `-`, starting with a letter or digit. */
const DEPLOYMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface AzureOpenAiProviderOptions {
  name?: string;
  /** https://{resource}.openai.azure.com, or a proxy in front of it; without /openai. */
  baseUrl: string;
  apiKey: string | undefined;
  timeoutMs: number;
  /** A dated api-version (deployment paths), or "v1" for the v1 API. */
  apiVersion: string;
  /** model → deployment; a model not listed is its own deployment. */
  deployments: Readonly<Record<string, string>>;
}

/**
 * Azure OpenAI. With a dated api-version the deployment is in the path:
 * `POST {base}/openai/deployments/{deployment}/chat/completions?api-version=…`
 * (the body's model is ignored by Azure and passes unchanged). With `v1` the
 * path is `{base}/openai/v1/chat/completions` and the deployment is the body's
 * model, rewritten only when the map names another one. The credential goes
 * in the `api-key` header; Entra ID tokens are not supported.
 */
export function createAzureOpenAiProvider(options: AzureOpenAiProviderOptions): Provider {
  const { apiVersion, deployments } = options;
  const v1 = apiVersion === "v1";
  const deploymentOf = (req: ProviderRequest): string => {
    const model = String(req.json.model);
    if (Object.hasOwn(deployments, model)) return deployments[model]!;
    // An unmapped model is its own deployment: only if it is a valid deployment name
    // (never `..` or a slash that would move the path).
    if (!DEPLOYMENT_NAME.test(model)) {
      throw new ModelNotCallableError(
        `The model '${model.slice(0, 100)}' is not a deployment name this Azure OpenAI provider can call; map it under deployments.`,
      );
    }
    return model;
  };
  return createOpenAiCompatibleProvider({
    name: options.name ?? "azure-openai",
    kind: "azure-openai",
    baseUrl: options.baseUrl,
    timeoutMs: options.timeoutMs,
    auth: options.apiKey === undefined ? {} : { "api-key": options.apiKey },
    endpoints: v1
      ? ["chat_completions", "completions", "embeddings", ...RESPONSES_ENDPOINTS]
      : ["chat_completions", "completions", "embeddings"],
    ...(v1 ? { responsesPath: `/openai/v1${OPENAI_PATHS.responses}` } : {}),
    target(endpoint: OpenAiEndpoint, req: ProviderRequest) {
      // No model (a stored prompt's response, v1 only): nothing to map.
      if (v1 && req.json.model === undefined) return { path: `/openai/v1${OPENAI_PATHS[endpoint]}` };
      const deployment = deploymentOf(req);
      if (v1) {
        const body =
          deployment === req.json.model ? undefined : Buffer.from(JSON.stringify({ ...req.json, model: deployment }));
        return { path: `/openai/v1${OPENAI_PATHS[endpoint]}`, ...(body ? { body } : {}) };
      }
      return {
        path: `/openai/deployments/${encodeURIComponent(deployment)}${OPENAI_PATHS[endpoint]}?api-version=${encodeURIComponent(apiVersion)}`,
      };
    },
  });
}

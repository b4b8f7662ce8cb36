import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mcpSecretsFromEnv } from "./mcp-secrets.js";

describe("mcpSecretsFromEnv", () => {
  const dir = mkdtempSync(join(tmpdir(), "mcp-secrets-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads MCP_SECRET_<NAME>, and MCP_SECRET_<NAME>_FILE over it, and nothing else", () => {
    const file = join(dir, "github");
    writeFileSync(file, "from-file\n");
    const secrets = mcpSecretsFromEnv({
      MCP_SECRET_JIRA: "jira-token",
      MCP_SECRET_GITHUB: "from-env",
      MCP_SECRET_GITHUB_FILE: file,
      MCP_SECRET_lower: "ignored",
      MCP_SECRET_EMPTY: "",
      OPENAI_API_KEY: "never",
    });
    expect([...secrets.entries()].sort()).toEqual([
      ["MCP_SECRET_GITHUB", "from-file"],
      ["MCP_SECRET_JIRA", "jira-token"],
    ]);
  });

  it("names the variable when its file cannot be read", () => {
    expect(() => mcpSecretsFromEnv({ MCP_SECRET_X_FILE: join(dir, "missing") })).toThrow(/MCP_SECRET_X_FILE points to/);
  });
});

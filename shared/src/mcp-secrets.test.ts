import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mcpSecretsFromEnv } from "./mcp-secrets.js";

describe("mcpSecretsFromEnv", () => {
  const dir = mkdtempSync(join(tmpdir(), "mcp-secrets-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("reads MCP_SECRET_<NAME> or MCP_SECRET_<NAME>_FILE, and nothing else", () => {
    const file = join(dir, "github");
    writeFileSync(file, "from-file\n");
    const secrets = mcpSecretsFromEnv({
      MCP_SECRET_JIRA: "jira-token",
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

  it("refuses MCP_SECRET_<NAME> and its _FILE both set, naming both and showing neither", () => {
    const file = join(dir, "both");
    writeFileSync(file, "file-value-9f8e7d\n");
    let message = "";
    try {
      mcpSecretsFromEnv({ MCP_SECRET_GITHUB: "env-value-1a2b3c", MCP_SECRET_GITHUB_FILE: file });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain("MCP_SECRET_GITHUB and MCP_SECRET_GITHUB_FILE are both set");
    expect(message).not.toContain("env-value-1a2b3c");
    expect(message).not.toContain("file-value-9f8e7d");
  });

  it("names the variable when its file cannot be read", () => {
    expect(() => mcpSecretsFromEnv({ MCP_SECRET_X_FILE: join(dir, "missing") })).toThrow(/MCP_SECRET_X_FILE points to/);
  });
});

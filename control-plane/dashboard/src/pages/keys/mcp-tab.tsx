import { useEffect, useState } from "react";
import { api } from "../../api.js";
import { Field, Options, Toggle } from "../../ui.js";
import { type Draft, list, MCP_MODES } from "./key-draft.js";

export function McpSettings(props: {
  d: Draft;
  set: <K extends keyof Draft>(k: K, v: Draft[K]) => void;
  errors: Record<string, string>;
}) {
  const { d, set, errors } = props;
  const servers = list(d.mcp_servers);
  return (
    <>
      <Toggle
        label="MCP Enabled (off: this key cannot use any MCP server or tool)"
        checked={d.mcp_enabled}
        onChange={(v) => set("mcp_enabled", v)}
      />
      {d.mcp_enabled && (
        <>
          <Field label="MCP Access Mode" error={errors.mcp_access_mode}>
            {(id, db) => (
              <select
                id={id}
                value={d.mcp_access_mode}
                aria-describedby={db}
                onChange={(e) => set("mcp_access_mode", e.target.value as Draft["mcp_access_mode"])}
              >
                <Options options={MCP_MODES} />
              </select>
            )}
          </Field>
          {(d.mcp_access_mode === "allow_list" || d.mcp_access_mode === "deny_list") && (
            <Field
              label={d.mcp_access_mode === "allow_list" ? "Allowed MCP Servers" : "Denied MCP Servers"}
              error={errors.mcp_servers}
              hint="Comma-separated server names."
            >
              {(id, db) => (
                <input
                  id={id}
                  value={d.mcp_servers}
                  aria-describedby={db}
                  aria-invalid={!!errors.mcp_servers || undefined}
                  onChange={(e) => set("mcp_servers", e.target.value)}
                />
              )}
            </Field>
          )}
          {servers.length > 0 && (
            <ToolPicker
              servers={servers}
              tools={d.mcp_tools}
              onChange={(t) => set("mcp_tools", t)}
              error={errors.mcp_tools}
            />
          )}
        </>
      )}
    </>
  );
}

/** Per-server tool checkboxes, filtered by a search box; new tool names are added by hand. */
function ToolPicker(props: {
  servers: string[];
  tools: Record<string, string[]>;
  onChange: (t: Record<string, string[]>) => void;
  error?: string | undefined;
}) {
  const [query, setQuery] = useState("");
  const [known, setKnown] = useState<Record<string, string[]>>(props.tools);
  const [adding, setAdding] = useState<Record<string, string>>({});
  // Each registered server's own tools, asked through the control plane (GET /internal/mcp-servers/{id}/tools);
  // a server that cannot be asked keeps the names added by hand.
  const serverNames = props.servers.join("\n");
  useEffect(() => {
    let live = true;
    const wanted = serverNames.split("\n");
    api<{ data: Array<{ id: string; name: string }> }>("GET", "/internal/mcp-servers")
      .then(async (registered) => {
        for (const server of wanted) {
          const id = registered.data.find((s) => s.name === server)?.id;
          if (!id) continue;
          const tools = await api<{ data: Array<{ name: string }> }>("GET", `/internal/mcp-servers/${id}/tools`).catch(
            () => null,
          );
          if (live && tools)
            setKnown((k) => ({
              ...k,
              [server]: [...new Set([...(k[server] ?? []), ...tools.data.map((t) => t.name)])],
            }));
        }
      })
      .catch(() => undefined);
    return () => {
      live = false;
    };
  }, [serverNames]);
  const toggle = (server: string, tool: string, on: boolean) => {
    const cur = new Set(props.tools[server] ?? []);
    if (on) cur.add(tool);
    else cur.delete(tool);
    props.onChange({ ...props.tools, [server]: [...cur] });
  };
  return (
    <fieldset className="tools">
      <legend>MCP Tools</legend>
      <label className="visually-hidden" htmlFor="tool-search">
        Search tools
      </label>
      <input
        id="tool-search"
        type="search"
        placeholder="Search tools"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
      />
      {props.servers.map((server) => (
        <div key={server} className="tool-server">
          <strong>{server}</strong>
          {(known[server] ?? [])
            .filter((t) => t.toLowerCase().includes(query.toLowerCase()))
            .map((tool) => (
              <label key={tool} className="check">
                <input
                  type="checkbox"
                  checked={(props.tools[server] ?? []).includes(tool)}
                  onChange={(e) => toggle(server, tool, e.target.checked)}
                />{" "}
                {tool}
              </label>
            ))}
          <div className="row tight">
            <label className="visually-hidden" htmlFor={`add-tool-${server}`}>
              Add a tool of {server}
            </label>
            <input
              id={`add-tool-${server}`}
              placeholder="tool name"
              value={adding[server] ?? ""}
              onChange={(e) => setAdding({ ...adding, [server]: e.target.value })}
            />
            <button
              type="button"
              className="secondary"
              onClick={() => {
                const tool = (adding[server] ?? "").trim();
                if (!tool) return;
                setKnown({ ...known, [server]: [...new Set([...(known[server] ?? []), tool])] });
                toggle(server, tool, true);
                setAdding({ ...adding, [server]: "" });
              }}
            >
              Add tool
            </button>
          </div>
        </div>
      ))}
      {props.error && (
        <small className="error" role="alert">
          {props.error}
        </small>
      )}
    </fieldset>
  );
}

/** The one-shot reveal of seed 004: the secret is in this component's memory only, until Done. */

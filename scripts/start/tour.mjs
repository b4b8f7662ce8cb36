// The "Tollgate is running" banner with the commands to try.
import { c, println } from "./output.mjs";
import { dataDir, rel } from "./paths.mjs";

export function printTour({ adminPort, grpcActual, gatewayPort, statusPort, provider, masterKey }) {
  const cpHost = `localhost:${adminPort}`;
  const gwHost = `localhost:${gatewayPort}`;
  const b = (s) => c.bold(s);
  const cmd = (s) => c.cyan(s);
  const note = (s) => c.gray(s);
  const lines = [
    "",
    c.green(b("Tollgate is running")),
    "",
    `  ${b("Admin API")}      http://${cpHost}   ${note("(control plane, Bearer master key)")}`,
    `  ${b("gRPC sync")}      http://localhost:${grpcActual}`,
    `  ${b("Gateway")}        http://${gwHost}/v1   ${note("(OpenAI-compatible)")}`,
    `  ${b("Metrics")}        http://localhost:${statusPort}/metrics   ${note(`(/readyz, /healthz on the same port)`)}`,
    `  ${b("Provider")}       ${provider}`,
    `  ${b("Master key")}     ${masterKey}`,
    `  ${b("Data")}           ${rel(dataDir)}/ ${note("(delete it to start over)")}`,
    "",
    b("Try it") + note(" (copy each id from the previous answer):"),
    "",
    cmd(`  export MASTER_KEY='${masterKey}'`),
    "",
    note("  # 1. a team"),
    cmd(`  curl -s http://${cpHost}/internal/teams -H "Authorization: Bearer $MASTER_KEY" \\`),
    cmd(`    -H 'Content-Type: application/json' -d '{"name":"demo","tpm_limit":100000}'`),
    note('  #    → {"id":"team_…"}   then: export TEAM_ID=team_…'),
    "",
    note("  # 2. a user in that team"),
    cmd(`  curl -s http://${cpHost}/internal/users -H "Authorization: Bearer $MASTER_KEY" \\`),
    cmd(`    -H 'Content-Type: application/json' -d '{"external_id":"alice","team_id":"'"$TEAM_ID"'"}'`),
    note('  #    → {"id":"user_…"}   then: export USER_ID=user_…'),
    "",
    note("  # 3. an API key for that user (the full key is shown only once)"),
    cmd(`  curl -s http://${cpHost}/internal/api-keys -H "Authorization: Bearer $MASTER_KEY" \\`),
    cmd(`    -H 'Content-Type: application/json' -d '{"name":"alice-laptop","user_id":"'"$USER_ID"'"}'`),
    note('  #    → {"key":"llmp_…"}   then: export TOLLGATE_KEY=llmp_…'),
    "",
    note("  # 4. a chat completion through the gateway"),
    cmd(`  curl -s http://${gwHost}/v1/chat/completions -H "Authorization: Bearer $TOLLGATE_KEY" \\`),
    cmd(
      `    -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello!"}]}'`,
    ),
    "",
    note("  # 5. what the gateway measured"),
    cmd(`  curl -s http://localhost:${statusPort}/metrics`),
    "",
    note("  OpenAI SDKs work too: baseURL ") + `http://${gwHost}/v1` + note(", apiKey $TOLLGATE_KEY."),
    note("  Ctrl-C stops both services."),
    "",
  ];
  for (const l of lines) println(l);
}

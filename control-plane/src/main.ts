import { ConfigError } from "@tollgate/shared";
import { loadConfig } from "./config.js";
import { createControlPlane } from "./index.js";

let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`control plane: configuration error: ${err.message}`);
    process.exit(1);
  }
  throw err;
}

const service = createControlPlane(config);
try {
  await service.start();
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  if (e.code === "EADDRINUSE") {
    console.error(`control plane: port already in use (${e.message}); set PORT / GRPC_PORT to free ports`);
  } else {
    console.error("control plane: failed to start:", err);
  }
  await service.stop().catch(() => {});
  process.exit(1);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void service.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error("control plane: error while stopping:", err);
        process.exit(1);
      },
    );
  });
}

import "./v8-tuning.js";
import { ConfigError, createLogger } from "@tollgate/shared";
import { loadConfig, type GatewayConfig } from "./config.js";
import { createGateway, type Gateway } from "./index.js";

function fail(message: string): never {
  process.stderr.write(`tollgate gateway: ${message}\n`);
  process.exit(1);
}

let config: GatewayConfig;
try {
  config = loadConfig(process.env);
} catch (err) {
  if (err instanceof ConfigError) fail(`configuration error: ${err.message}`);
  throw err;
}

const logger = createLogger({ name: "gateway", level: config.logLevel });
let gateway: Gateway | undefined;
try {
  gateway = createGateway(config, { logger });
  await gateway.start();
} catch (err) {
  const message =
    err instanceof ConfigError ? `configuration error: ${err.message}` : `failed to start: ${(err as Error).message}`;
  logger.fatal({ err }, message);
  logger.flush();
  await gateway?.stop().catch(() => undefined);
  fail(message);
}

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, "stopping gateway");
    gateway!.stop().then(
      () => {
        logger.flush();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, "error while stopping the gateway");
        logger.flush();
        process.exit(1);
      },
    );
  });
}

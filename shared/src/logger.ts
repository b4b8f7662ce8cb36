import { pino, type Logger } from "pino";

export type { Logger } from "pino";

/**
 * Paths pino blanks out wherever they appear in a log line. Secrets never
 * belong in a log object in the first place; this is the second fence.
 */
export const REDACT_PATHS = [
  "authorization",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
  'headers["x-api-key"]',
  '*.headers["x-api-key"]',
  'headers["api-key"]',
  '*.headers["api-key"]',
  "key",
  "*.key",
  "token",
  "*.token",
  "masterKey",
  "*.masterKey",
  "apiKey",
  "*.apiKey",
  "gatewayToken",
  "*.gatewayToken",
  "upstreamApiKey",
  "*.upstreamApiKey",
];

export interface LoggerOptions {
  name: string;
  level?: string;
  /** Where to write; defaults to stdout. Tests pass a stream to inspect. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? "info",
      redact: { paths: REDACT_PATHS, censor: "[redacted]" },
      base: { service: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}

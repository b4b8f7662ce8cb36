/** Software version reported by gateways and the control plane. */
export const TOLLGATE_VERSION = "0.1.0";

/** gRPC metadata header carrying the gateway token. */
export const GATEWAY_TOKEN_HEADER = "authorization";

/**
 * How often prom-client's event-loop lag monitor samples, in ms. Its default (10 ms) is a
 * 100 Hz timer: at idle that wake-up was most of a process's CPU. 100 ms still catches any
 * stall long enough to matter to a request.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

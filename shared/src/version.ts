/** Software version reported by gateways and the control plane. */
export const TOLLGATE_VERSION = "0.1.0";

/** gRPC metadata header carrying the gateway token. */
export const GATEWAY_TOKEN_HEADER = "authorization";

/**
 * Bounds on the gRPC port's HTTP/2 sessions. Unbounded, 21,000 sessions that never sent a
 * request took the process from 117 to 472 MB and the admin API to 0 answers: every session
 * holds buffers and settings though it never authenticates. Here a session must carry one
 * RPC whose gateway token is accepted within GRPC_AUTH_TIMEOUT, or it is closed; sessions
 * beyond GRPC_MAX_SESSIONS (in total) or GRPC_MAX_SESSIONS_PER_CLIENT (from one address)
 * are closed on arrival. The admin API is another server and keeps answering.
 */
export interface SessionLimits {
  authTimeoutMs: number;
  maxSessions: number;
  maxPerAddress: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = { authTimeoutMs: 10_000, maxSessions: 2_000, maxPerAddress: 200 };

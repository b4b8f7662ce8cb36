import type { CounterKind } from "@tollgate/shared";

/** One counter statement sent to the control plane. */
export interface Statement {
  counter: string;
  window: string;
  kind: CounterKind;
  capacity: number;
  consumed: number;
  wantHeld: number;
  windowEndsAtMs: number;
}

export interface Grant {
  counter: string;
  window: string;
  held: number;
  fleetUsed: number;
}

/** The control plane's QuotaService.Acquire, as the manager needs it. */
export interface QuotaRpc {
  acquire(statements: Statement[]): Promise<{
    grants: Grant[];
    activeGateways: number;
    /** The control plane's clock when it took the request and when it answered (ms since the epoch). */
    serverTime?: { tookMs: number; sentMs: number };
  }>;
}

import type { Change, Settings } from "@tollgate/shared";
import type { DeltaResult, SnapshotInput, SnapshotResult } from "../db/key-cache.js";

/**
 * What the sync loop pushes the control plane's state to. The loop owns the
 * stream, its order and its acknowledgements; the receiver owns the state.
 * Narrow on purpose: the loop can be tested against a fake, and the cache
 * knows nothing of the stream.
 */
export interface SyncReceiver {
  /** Replaces the whole state in one transaction; throws (keeping the old state) when it cannot. */
  applySnapshot(snapshot: SnapshotInput): SnapshotResult;
  /** Applies consecutive changes in one transaction; throws (keeping the old state) when it cannot. */
  applyChanges(changes: Change[]): DeltaResult;
  /** The control plane's settings, sent first on every stream. */
  applySettings(settings: Settings): void;
}

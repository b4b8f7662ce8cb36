import type { Change, Settings } from "@tollgate/shared";
import type { DeltaResult, SnapshotBuilder, SnapshotHead, SnapshotResult } from "../db/key-cache.js";

/**
 * What the sync loop pushes the control plane's state to. The loop owns the
 * stream, its order and its acknowledgements; the receiver owns the state.
 * Narrow on purpose: the loop can be tested against a fake, and the cache
 * knows nothing of the stream.
 */
export interface SyncReceiver {
  /** Starts receiving a snapshot; its chunks go to the builder's add() as they arrive, and change nothing yet. */
  beginSnapshot(head: SnapshotHead): SnapshotBuilder;
  /** Replaces the whole state with the received snapshot in one transaction; throws (keeping the old state) when it cannot. */
  commitSnapshot(snapshot: SnapshotBuilder): SnapshotResult;
  /** Applies consecutive changes in one transaction; throws (keeping the old state) when it cannot. */
  applyChanges(changes: Change[]): DeltaResult;
  /** The control plane's settings, sent first on every stream. */
  applySettings(settings: Settings): void;
}

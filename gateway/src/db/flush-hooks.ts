import type { Logger } from "@tollgate/shared";
import type { WriterStatement } from "./sqlite-writer.js";

/** A flush hook: `final` is true when the batch is a flush() or close(), which must take everything. */
export type FlushHook = (final: boolean) => FlushHookBatch | void;

export interface FlushHookBatch {
  ops: Array<[WriterStatement, unknown[]]>;
  /** Puts back in memory what the ops took, should their transaction fail, so the next batch writes it again. */
  undo: () => void;
  /** Runs once the transaction committed. */
  done?: () => void;
}

/**
 * Writes of other batched state (quota consumption, the usage outbox) that go
 * in the same transaction as a log batch, so they commit or fail together.
 */
export class FlushHooks {
  private readonly hooks: FlushHook[] = [];

  get size(): number {
    return this.hooks.length;
  }

  add(hook: FlushHook): void {
    this.hooks.push(hook);
  }

  private closeHooks: Array<() => void> = [];

  /** Runs `fn` once, when the writer begins to close (before its last batch). */
  beforeClose(fn: () => void): void {
    this.closeHooks.push(fn);
  }

  /** Runs the close hooks once; one that throws loses its own rows, not the others'. */
  runBeforeClose(logger: Logger): void {
    const fns = this.closeHooks;
    this.closeHooks = [];
    runEach(fns, logger, "a shutdown hook of the log writer failed; its rows may be missing");
  }

  /** Appends every hook's ops to the batch; returns their undos, to run if its transaction fails, and their dones, once it commits. */
  take(
    final: boolean,
    stmts: WriterStatement[],
    params: unknown[][],
  ): { undos: Array<() => void>; dones: Array<() => void> } {
    const undos: Array<() => void> = [];
    const dones: Array<() => void> = [];
    for (const hook of this.hooks) {
      const taken = hook(final);
      if (!taken) continue;
      for (const [stmt, p] of taken.ops) {
        stmts.push(stmt);
        params.push(p);
      }
      undos.push(taken.undo);
      if (taken.done) dones.push(taken.done);
    }
    return { undos, dones };
  }
}

/** Runs the undos of a failed batch; one that throws loses its own data, not the others'. */
export function runUndos(undos: Array<() => void>, logger: Logger): void {
  runEach(undos, logger, "could not put back what a failed log batch took; that usage is lost");
}

/** Runs the dones of a committed batch; one that throws does not stop the others. */
export function runDones(dones: Array<() => void>, logger: Logger): void {
  runEach(dones, logger, "a flush hook failed after its batch committed");
}

function runEach(fns: Array<() => void>, logger: Logger, message: string): void {
  for (const fn of fns) {
    try {
      fn();
    } catch (err) {
      logger.error({ err }, message);
    }
  }
}

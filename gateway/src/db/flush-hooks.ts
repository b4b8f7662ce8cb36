import type { Logger } from "@tollgate/shared";
import type { WriterStatement } from "./sqlite-writer.js";

/** A flush hook: `final` is true when the batch is a flush() or close(), which must take everything. */
export type FlushHook = (final: boolean) => FlushHookBatch | void;

export interface FlushHookBatch {
  ops: Array<[WriterStatement, unknown[]]>;
  /** Puts back in memory what the ops took, should their transaction fail, so the next batch writes it again. */
  undo: () => void;
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
    for (const fn of fns) {
      try {
        fn();
      } catch (err) {
        logger.error({ err }, "a shutdown hook of the log writer failed; its rows may be missing");
      }
    }
  }

  /** Appends every hook's ops to the batch; returns their undos, to run if its transaction fails. */
  take(final: boolean, stmts: WriterStatement[], params: unknown[][]): Array<() => void> {
    const undos: Array<() => void> = [];
    for (const hook of this.hooks) {
      const taken = hook(final);
      if (!taken) continue;
      for (const [stmt, p] of taken.ops) {
        stmts.push(stmt);
        params.push(p);
      }
      undos.push(taken.undo);
    }
    return undos;
  }
}

/** Runs the undos of a failed batch; one that throws loses its own data, not the others'. */
export function runUndos(undos: Array<() => void>, logger: Logger): void {
  for (const undo of undos) {
    try {
      undo();
    } catch (err) {
      logger.error({ err }, "could not put back what a failed log batch took; that usage is lost");
    }
  }
}

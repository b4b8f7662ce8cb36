/**
 * Wakes sync streams when their organization's change log grows. Local writes
 * notify directly after commit; on Postgres, LISTEN/NOTIFY carries commits made
 * through other control-plane replicas. A notification is only a hint: streams
 * always read the change log itself, so a lost or duplicate wake-up is harmless.
 */
export class ChangeNotifier {
  private readonly versions = new Map<string, number>();
  private readonly waiters = new Map<string, Set<() => void>>();

  version(orgId: string): number {
    return this.versions.get(orgId) ?? 0;
  }

  notify(orgId: string): void {
    this.versions.set(orgId, this.version(orgId) + 1);
    const set = this.waiters.get(orgId);
    if (!set) return;
    this.waiters.delete(orgId);
    for (const wake of set) wake();
  }

  /** Resolves "changed" once version(orgId) moves past `since`, else "timeout" or "aborted". */
  wait(
    orgId: string,
    since: number,
    timeoutMs: number,
    signal: AbortSignal,
  ): Promise<"changed" | "timeout" | "aborted"> {
    if (this.version(orgId) !== since) return Promise.resolve("changed");
    if (signal.aborted) return Promise.resolve("aborted");
    return new Promise((resolve) => {
      let set = this.waiters.get(orgId);
      if (!set) this.waiters.set(orgId, (set = new Set()));
      const done = (outcome: "changed" | "timeout" | "aborted") => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.waiters.get(orgId)?.delete(wake);
        resolve(outcome);
      };
      const wake = () => done("changed");
      const onAbort = () => done("aborted");
      const timer = setTimeout(() => done("timeout"), timeoutMs);
      set.add(wake);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }
}

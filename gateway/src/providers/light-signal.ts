/**
 * The part of an abort signal the request path uses: `aborted`, `reason`
 * and "abort" listeners. AbortSignal satisfies it.
 */
export interface CallerSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

type Listener = () => void;

/**
 * A one-shot abort signal without EventTarget: creating an AbortController
 * (an AbortSignal is an EventTarget) per request was a few % of the gateway's
 * CPU. It has both listener forms undici's request() accepts as a `signal`
 * (EventTarget's addEventListener and EventEmitter's once/removeListener),
 * and fires each "abort" listener once.
 */
export class LightSignal implements CallerSignal {
  aborted = false;
  reason: unknown = undefined;
  private listeners: Listener[] = [];

  addEventListener(type: string, listener: Listener): void {
    if (type === "abort" && !this.aborted) this.listeners.push(listener);
  }

  removeEventListener(type: string, listener: Listener): void {
    if (type !== "abort") return;
    const i = this.listeners.indexOf(listener);
    if (i !== -1) this.listeners.splice(i, 1);
  }

  on(type: string, listener: Listener): this {
    this.addEventListener(type, listener);
    return this;
  }

  once(type: string, listener: Listener): this {
    this.addEventListener(type, listener);
    return this;
  }

  removeListener(type: string, listener: Listener): this {
    this.removeEventListener(type, listener);
    return this;
  }

  off(type: string, listener: Listener): this {
    this.removeEventListener(type, listener);
    return this;
  }

  /** Aborts once, calling every listener; the default reason is an AbortError, as AbortController's. */
  abort(reason: unknown = new DOMException("This operation was aborted", "AbortError")): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = [];
    for (const l of listeners) l();
  }
}

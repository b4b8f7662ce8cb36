/**
 * The message of the error `fn` throws, which must be named `name` (a
 * ConfigError by default); throws when `fn` returns, so a test cannot pass
 * on silence.
 */
export function thrownMessage(fn: () => unknown, name = "ConfigError"): string {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof Error) || err.name !== name) throw err;
    return err.message;
  }
  throw new Error(`expected a ${name}, but nothing was thrown`);
}

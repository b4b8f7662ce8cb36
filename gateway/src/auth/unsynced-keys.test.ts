import { generateApiKey } from "@tollgate/shared";
import { describe, expect, it } from "vitest";
import { UnsyncedKeys } from "./unsynced-keys.js";

function judge(state: { mayMiss: boolean }, now = { ms: 0 }) {
  return new UnsyncedKeys({ mayMissKeys: () => state.mayMiss, windowMs: 60_000, now: () => now.ms });
}

describe("which unknown keys count as guesses", () => {
  it("never counts a well-formed key while the gateway may be missing keys (disconnected or catching up)", () => {
    const state = { mayMiss: true };
    const j = judge(state);
    const key = generateApiKey().key;
    for (let i = 0; i < 100; i++) expect(j.countsAsGuess("unknown", "10.0.0.1", key)).toBe(false);
    for (let i = 0; i < 100; i++) expect(j.countsAsGuess("unknown", "10.0.0.1", generateApiKey().key)).toBe(false);
    expect(j.countsAsGuess("ephemeral_unknown_signing_key", "10.0.0.1", "llmpe_x")).toBe(false);
    // What can never become valid still counts.
    expect(j.countsAsGuess("bad_checksum", "10.0.0.1", key.slice(0, -1) + "0")).toBe(true);
    expect(j.countsAsGuess("malformed", "10.0.0.1", "llmp_short")).toBe(true);
  });

  it("when caught up, counts each distinct unknown key, and a retried one once per window", () => {
    const state = { mayMiss: false };
    const now = { ms: 1_000 };
    const j = judge(state, now);
    const key = generateApiKey().key;
    expect(j.countsAsGuess("unknown", "10.0.0.1", key)).toBe(true);
    for (let i = 0; i < 20; i++) expect(j.countsAsGuess("unknown", "10.0.0.1", key)).toBe(false);
    // Another client presenting the same key is its own pair.
    expect(j.countsAsGuess("unknown", "10.0.0.2", key)).toBe(true);
    // A guesser tries new keys: every one counts.
    for (let i = 0; i < 20; i++) expect(j.countsAsGuess("unknown", "10.0.0.1", generateApiKey().key)).toBe(true);
    now.ms += 60_001;
    expect(j.countsAsGuess("unknown", "10.0.0.1", key)).toBe(true);
    expect(j.countsAsGuess("ephemeral_unknown_signing_key", "10.0.0.1", "llmpe_x")).toBe(true);
  });

  it("stays bounded: the oldest pairs are forgotten first", () => {
    const j = new UnsyncedKeys({ mayMissKeys: () => false, windowMs: 60_000, now: () => 0, maxEntries: 2 });
    const [a, b, c] = [generateApiKey().key, generateApiKey().key, generateApiKey().key];
    expect(j.countsAsGuess("unknown", "ip", a)).toBe(true);
    expect(j.countsAsGuess("unknown", "ip", b)).toBe(true);
    expect(j.countsAsGuess("unknown", "ip", c)).toBe(true);
    expect(j.countsAsGuess("unknown", "ip", a)).toBe(true); // forgotten
    expect(j.countsAsGuess("unknown", "ip", c)).toBe(false);
  });
});

import { describe, expect, it } from "vitest";
import { signState, stateKey, verifyState } from "./state.js";

describe("SSO state", () => {
  const key = stateKey("a-master-key-of-at-least-32-characters!!");
  const now = new Date("2026-12-03T08:00:00Z");
  const exp = now.getTime() + 10 * 60_000;

  it("round-trips until it expires", () => {
    const state = signState({ id: "sso_x", exp }, key);
    expect(verifyState(state, key, now)).toEqual({ id: "sso_x", exp });
    expect(verifyState(state, key, new Date(exp))).toBe("expired");
  });

  it("refuses a state signed with another key, altered, or malformed", () => {
    const state = signState({ id: "sso_x", exp }, key);
    expect(verifyState(state, stateKey("another-master-key-of-32-characters!!!!"), now)).toBe("forged");
    const [, sig] = state.split(".");
    const altered = Buffer.from(JSON.stringify({ id: "sso_y", exp })).toString("base64url");
    expect(verifyState(`${altered}.${sig}`, key, now)).toBe("forged");
    for (const bad of [undefined, "", "abc", "a.b.c", `${state}.x`, "x".repeat(600)])
      expect(verifyState(bad, key, now)).toBe("forged");
  });
});

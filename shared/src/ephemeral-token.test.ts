import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  ed25519PublicKeyFromRaw,
  ed25519PublicKeyToRaw,
  signEphemeralToken,
  verifyEphemeralToken,
} from "./ephemeral-token.js";

describe("ephemeral tokens", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const synced = ed25519PublicKeyFromRaw(ed25519PublicKeyToRaw(publicKey));
  const lookup = (kid: string) => (kid === "sk_1" ? synced : undefined);
  const now = 1_800_000_000;
  const { token, claims } = signEphemeralToken(
    { kid: "sk_1", key_id: "ak_1", org_id: "org_1", iat: now, exp: now + 60 },
    privateKey,
  );

  it("verify offline with the synced public key until they expire", () => {
    expect(token.startsWith("llmpe_")).toBe(true);
    expect(verifyEphemeralToken(token, lookup, now + 10)).toEqual({ ok: true, claims });
    expect(verifyEphemeralToken(token, lookup, now + 60)).toEqual({ ok: false, reason: "expired" });
  });

  it("reject tampering, unknown signing keys and garbage", () => {
    const [body, sig] = token.split(".");
    const forged = Buffer.from(JSON.stringify({ ...claims, exp: now + 99999 })).toString("base64url");
    expect(verifyEphemeralToken(`llmpe_${forged}.${sig}`, lookup, now).ok).toBe(false);
    // Another signature of the right length (the first character always carries 6 full bits).
    const otherSig = (sig![0] === "A" ? "B" : "A") + sig!.slice(1);
    expect(verifyEphemeralToken(`${body}.${otherSig}`, lookup, now)).toEqual({ ok: false, reason: "bad_signature" });
    expect(verifyEphemeralToken(token, () => undefined, now)).toEqual({ ok: false, reason: "unknown_signing_key" });
    expect(verifyEphemeralToken("llmpe_notbase64.x", lookup, now)).toEqual({ ok: false, reason: "malformed" });
    expect(verifyEphemeralToken("llmpe_" + "a".repeat(2000), lookup, now)).toEqual({ ok: false, reason: "malformed" });
  });
});

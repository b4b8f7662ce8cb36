import { describe, expect, it } from "vitest";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { KeyStatus, ed25519PublicKeyFromRaw, generateApiKey, type KeyUpsert } from "@tollgate/shared";
import { toStoredKey } from "../db/synced-records.js";
import { makeKey, makeSigningKey, mintToken, rotateKey, withFields } from "@tollgate/testkit";
import { authenticate, authenticateHeaders, bearerToken, presentedCredential } from "./authenticate.js";
import { KeyIndex, compileKey, type CompiledKey } from "./key-index.js";

const NOW = Date.parse("2025-06-01T12:00:00Z");

function compiled(u: KeyUpsert, expiresAtMs: number | null = null): CompiledKey {
  const k = expiresAtMs === null ? u : withFields(u, { expiresAt: timestampFromMs(expiresAtMs) });
  return compileKey(toStoredKey(k));
}

describe("authenticate", () => {
  const active = makeKey();
  const inactive = makeKey({ status: KeyStatus.INACTIVE });
  const revoked = makeKey({ status: KeyStatus.REVOKED });
  const expiring = makeKey();
  const index = new KeyIndex();
  index.replaceAll({
    keys: [
      compiled(active.upsert),
      compiled(inactive.upsert),
      compiled(revoked.upsert),
      compiled(expiring.upsert, NOW + 60_000),
    ],
  });
  const bearer = (k: string) => `Bearer ${k}`;

  it("accepts an active key", () => {
    const r = authenticate(bearer(active.secret), index, NOW);
    expect(r.ok && r.key.id).toBe(active.upsert.id);
  });

  it("refuses a missing key and says how to send one", () => {
    for (const header of [undefined, "", "Bearer "]) {
      const r = authenticate(header, index, NOW);
      expect(r).toMatchObject({ ok: false, reason: "missing" });
      expect(!r.ok && r.message).toContain("Authorization: Bearer llmp_");
    }
  });

  it("refuses a malformed key without echoing it", () => {
    for (const header of ["Bearer sk-proj-abcdef", "Basic dXNlcjpwYXNz", `Bearer ${active.secret}x`]) {
      const r = authenticate(header, index, NOW);
      expect(r).toMatchObject({ ok: false, reason: "malformed" });
      expect(!r.ok && r.message).not.toContain(header.slice(7));
    }
  });

  it("refuses a key whose checksum does not match", () => {
    const s = active.secret;
    const typo = s.slice(0, 10) + (s[10] === "a" ? "b" : "a") + s.slice(11);
    expect(authenticate(bearer(typo), index, NOW)).toMatchObject({ ok: false, reason: "bad_checksum" });
  });

  it("refuses a well-formed key it does not know", () => {
    expect(authenticate(bearer(generateApiKey().key), index, NOW)).toMatchObject({
      ok: false,
      reason: "unknown",
      key: undefined,
    });
  });

  it("refuses inactive and revoked keys, naming the key id for the audit", () => {
    const i = authenticate(bearer(inactive.secret), index, NOW);
    expect(i).toMatchObject({ ok: false, reason: "inactive" });
    expect(!i.ok && i.key?.id).toBe(inactive.upsert.id);
    expect(authenticate(bearer(revoked.secret), index, NOW)).toMatchObject({ ok: false, reason: "revoked" });
  });

  it("refuses a key once the clock passes its expiry, without any sync", () => {
    expect(authenticate(bearer(expiring.secret), index, NOW + 59_999).ok).toBe(true);
    const r = authenticate(bearer(expiring.secret), index, NOW + 60_000);
    expect(r).toMatchObject({ ok: false, reason: "expired" });
    expect(!r.ok && r.message).toContain("2025-06-01T12:01:00.000Z");
  });

  it("is case-insensitive on the scheme", () => {
    expect(authenticate(`bearer ${active.secret}`, index, NOW).ok).toBe(true);
  });
});

describe("credential headers", () => {
  const active = makeKey();
  const other = makeKey();
  const inactive = makeKey({ status: KeyStatus.INACTIVE });
  const index = new KeyIndex();
  index.replaceAll({ keys: [compiled(active.upsert), compiled(other.upsert), compiled(inactive.upsert)] });
  const typo = (s: string) => s.slice(0, 10) + (s[10] === "a" ? "b" : "a") + s.slice(11);

  it("accepts a key in x-api-key (Anthropic clients) and in api-key (Azure clients)", () => {
    for (const header of ["x-api-key", "api-key"]) {
      const r = authenticateHeaders({ [header]: active.secret }, index, NOW);
      expect(r.ok && r.key.id).toBe(active.upsert.id);
      expect(presentedCredential({ [header]: ` ${active.secret} ` })).toEqual({
        header,
        token: active.secret,
        ignored: [],
      });
    }
  });

  it("runs the same format and checksum checks, before any lookup, whatever the header", () => {
    for (const header of ["x-api-key", "api-key"]) {
      const malformed = authenticateHeaders({ [header]: "sk-ant-api03-abcdef" }, index, NOW);
      expect(malformed).toMatchObject({ ok: false, reason: "malformed" });
      expect(!malformed.ok && malformed.message).toContain(`in the '${header}' header`);
      expect(!malformed.ok && malformed.message).not.toContain("sk-ant");
      // A bearer value is not a key: these headers carry the key alone.
      expect(authenticateHeaders({ [header]: `Bearer ${active.secret}` }, index, NOW)).toMatchObject({
        ok: false,
        reason: "malformed",
      });
      expect(authenticateHeaders({ [header]: typo(active.secret) }, index, NOW)).toMatchObject({
        ok: false,
        reason: "bad_checksum",
      });
      expect(authenticateHeaders({ [header]: generateApiKey().key }, index, NOW)).toMatchObject({
        ok: false,
        reason: "unknown",
      });
      expect(authenticateHeaders({ [header]: inactive.secret }, index, NOW)).toMatchObject({
        ok: false,
        reason: "inactive",
      });
      // A repeated header is joined by Node; it never passes as a key.
      expect(authenticateHeaders({ [header]: [active.secret, active.secret] }, index, NOW)).toMatchObject({
        ok: false,
        reason: "malformed",
      });
    }
  });

  it("reads Authorization, then x-api-key, then api-key: the first wins even when it is the wrong one", () => {
    const both = { authorization: `Bearer ${active.secret}`, "x-api-key": other.secret, "api-key": "garbage" };
    expect(presentedCredential(both)).toEqual({
      header: "authorization",
      token: active.secret,
      ignored: ["x-api-key", "api-key"],
    });
    const r = authenticateHeaders(both, index, NOW);
    expect(r.ok && r.key.id).toBe(active.upsert.id);

    const x = authenticateHeaders({ "x-api-key": other.secret, "api-key": active.secret }, index, NOW);
    expect(x.ok && x.key.id).toBe(other.upsert.id);

    // A wrong first credential is not rescued by a right one further down, and the message says why.
    const wrong = authenticateHeaders(
      { authorization: `Bearer ${generateApiKey().key}`, "x-api-key": active.secret },
      index,
      NOW,
    );
    expect(wrong).toMatchObject({ ok: false, reason: "unknown" });
    expect(!wrong.ok && wrong.message).toContain(
      "Read from the 'authorization' header, which takes precedence: 'x-api-key' was ignored.",
    );
    expect(
      authenticateHeaders({ authorization: "Basic dXNlcjpwYXNz", "api-key": active.secret }, index, NOW),
    ).toMatchObject({
      ok: false,
      reason: "malformed",
    });
  });

  it("skips headers that carry no credential: blank, or a bearer scheme without a token", () => {
    for (const authorization of ["", "   ", "Bearer", "Bearer   "]) {
      const r = authenticateHeaders({ authorization, "x-api-key": active.secret }, index, NOW);
      expect(r.ok && r.key.id).toBe(active.upsert.id);
    }
    const r = authenticateHeaders({ "x-api-key": "", "api-key": active.secret }, index, NOW);
    expect(r.ok && r.key.id).toBe(active.upsert.id);
    const none = authenticateHeaders({ "x-api-key": " " }, index, NOW);
    expect(none).toMatchObject({ ok: false, reason: "missing" });
    expect(!none.ok && none.message).toContain("'x-api-key' or 'api-key'");
  });
});

describe("rotation grace period", () => {
  const old = makeKey();
  const graceUntil = NOW + 60_000;
  const rotated = rotateKey(old, graceUntil);
  const bearer = (k: string) => `Bearer ${k}`;

  it("accepts both secrets, as the same key, until the previous one's expiry by the clock", () => {
    const index = new KeyIndex();
    index.replaceAll({ keys: [compiled(rotated.upsert)] });
    expect(index.size).toBe(1);
    for (const secret of [old.secret, rotated.secret]) {
      const r = authenticate(bearer(secret), index, graceUntil - 1);
      expect(r.ok && r.key.id).toBe(old.upsert.id);
    }
    const r = authenticate(bearer(old.secret), index, graceUntil);
    expect(r).toMatchObject({ ok: false, reason: "rotated", keyId: old.upsert.id });
    expect(!r.ok && r.message).toContain("2025-06-01T12:01:00.000Z");
    // The new secret's prefix is not told to whoever holds the old one.
    expect(!r.ok && r.message).not.toContain(rotated.upsert.keyPrefix);
    expect(authenticate(bearer(rotated.secret), index, graceUntil + 1).ok).toBe(true);
  });

  it("drops the previous secret when a later upsert carries none, and when the key is deleted", () => {
    const index = new KeyIndex();
    index.upsert(compiled(rotated.upsert));
    expect(authenticate(bearer(old.secret), index, NOW).ok).toBe(true);
    index.upsert(
      compiled(withFields(rotated.upsert, { previousKeyHash: new Uint8Array(0), previousKeyExpiresAt: undefined })),
    );
    expect(authenticate(bearer(old.secret), index, NOW)).toMatchObject({ ok: false, reason: "unknown" });
    expect(authenticate(bearer(rotated.secret), index, NOW).ok).toBe(true);

    index.upsert(compiled(rotated.upsert));
    index.delete(old.upsert.id);
    expect(authenticate(bearer(old.secret), index, NOW)).toMatchObject({ ok: false, reason: "unknown" });
    expect(authenticate(bearer(rotated.secret), index, NOW)).toMatchObject({ ok: false, reason: "unknown" });
  });

  it("refuses the old secret at once after a rotation without grace", () => {
    const index = new KeyIndex();
    index.upsert(compiled(old.upsert));
    index.upsert(compiled(rotateKey(old).upsert));
    expect(authenticate(bearer(old.secret), index, NOW)).toMatchObject({ ok: false, reason: "unknown" });
  });
});

describe("ephemeral tokens", () => {
  const ORG = "org_eph";
  const signer = makeSigningKey();
  const parent = makeKey();
  const inactiveParent = makeKey({ status: KeyStatus.INACTIVE });
  const expiringParent = makeKey();
  const index = new KeyIndex();
  index.replaceAll({
    keys: [compiled(parent.upsert), compiled(inactiveParent.upsert), compiled(expiringParent.upsert, NOW + 10_000)],
    // The gateway builds KeyObjects from the raw synced bytes; so does this test.
    signingKeys: [[signer.id, ed25519PublicKeyFromRaw(signer.message.publicKey)]],
    orgId: ORG,
  });
  const bearer = (t: string) => `Bearer ${t}`;
  const token = (keyId = parent.upsert.id, opts: { orgId?: string; ttlSeconds?: number; nowMs?: number } = {}) =>
    mintToken(signer, {
      keyId,
      orgId: opts.orgId ?? ORG,
      nowMs: opts.nowMs ?? NOW,
      ttlSeconds: opts.ttlSeconds ?? 600,
    });

  it("authenticates as its parent key, with the token id for the log", () => {
    const r = authenticate(bearer(token()), index, NOW);
    expect(r.ok && r.key.id).toBe(parent.upsert.id);
    expect(r.ok && r.ephemeral?.tokenId).toMatch(/^[\w-]{16}$/);
    expect(r.ok && r.ephemeral?.expiresAtMs).toBe(NOW + 600_000);
  });

  it("refuses an expired token, by the clock", () => {
    const t = token(parent.upsert.id, { ttlSeconds: 60 });
    expect(authenticate(bearer(t), index, NOW + 59_000).ok).toBe(true);
    expect(authenticate(bearer(t), index, NOW + 60_000)).toMatchObject({
      ok: false,
      reason: "ephemeral_expired",
      keyId: parent.upsert.id,
    });
  });

  it("refuses a tampered token, a garbled one and one signed by an unknown key", () => {
    const t = token();
    const [body, sig] = t.split(".") as [string, string];
    const claims = JSON.parse(Buffer.from(body.slice("llmpe_".length), "base64url").toString()) as Record<
      string,
      unknown
    >;
    const forged =
      "llmpe_" +
      Buffer.from(JSON.stringify({ ...claims, key_id: inactiveParent.upsert.id, exp: 9_999_999_999 })).toString(
        "base64url",
      );
    expect(authenticate(bearer(`${forged}.${sig}`), index, NOW)).toMatchObject({
      ok: false,
      reason: "ephemeral_bad_signature",
      keyId: null,
    });
    const flipped = sig.slice(0, 5) + (sig[5] === "A" ? "B" : "A") + sig.slice(6);
    expect(authenticate(bearer(`${body}.${flipped}`), index, NOW)).toMatchObject({
      ok: false,
      reason: "ephemeral_bad_signature",
    });
    expect(authenticate(bearer("llmpe_not-a-token"), index, NOW)).toMatchObject({
      ok: false,
      reason: "ephemeral_malformed",
    });
    const stranger = mintToken(makeSigningKey(), { keyId: parent.upsert.id, orgId: ORG, nowMs: NOW });
    expect(authenticate(bearer(stranger), index, NOW)).toMatchObject({
      ok: false,
      reason: "ephemeral_unknown_signing_key",
    });
  });

  it("refuses a token of another organization", () => {
    expect(authenticate(bearer(token(parent.upsert.id, { orgId: "org_other" })), index, NOW)).toMatchObject({
      ok: false,
      reason: "ephemeral_wrong_org",
    });
  });

  it("dies with its parent: inactive, expired by the clock, or unknown", () => {
    const inactive = authenticate(bearer(token(inactiveParent.upsert.id)), index, NOW);
    expect(inactive).toMatchObject({ ok: false, reason: "ephemeral_parent_inactive", keyId: inactiveParent.upsert.id });
    expect(!inactive.ok && inactive.message).not.toContain(inactiveParent.upsert.keyPrefix);
    const t = token(expiringParent.upsert.id);
    expect(authenticate(bearer(t), index, NOW + 9_999).ok).toBe(true);
    expect(authenticate(bearer(t), index, NOW + 10_000)).toMatchObject({
      ok: false,
      reason: "ephemeral_parent_inactive",
    });
    expect(authenticate(bearer(token("ak_gone")), index, NOW)).toMatchObject({
      ok: false,
      reason: "ephemeral_parent_inactive",
      keyId: "ak_gone",
    });
  });
});

describe("bearerToken", () => {
  it("parses the scheme case-insensitively and refuses anything but one token", () => {
    expect(bearerToken(undefined)).toBeUndefined();
    expect(bearerToken("  ")).toBeUndefined();
    expect(bearerToken("Bearer")).toBeUndefined();
    expect(bearerToken("Bearer \t ")).toBeUndefined();
    expect(bearerToken("Bearer abc")).toBe("abc");
    expect(bearerToken("bEaReR\tabc  ")).toBe("abc");
    expect(bearerToken("Bearer  abc")).toBe("abc");
    expect(bearerToken("Bearerabc")).toBeNull();
    expect(bearerToken("Bearer a b")).toBeNull();
    expect(bearerToken("Basic abc")).toBeNull();
    expect(bearerToken("abc")).toBeNull();
  });

  it("takes linear time on hostile headers", () => {
    const started = performance.now();
    for (const h of [
      `Bearer${" ".repeat(16_000)}a b`,
      `Bearer a${" ".repeat(16_000)}b`,
      `Bearer${" \t".repeat(8_000)}x`,
    ])
      bearerToken(h);
    expect(performance.now() - started).toBeLessThan(20);
  });
});

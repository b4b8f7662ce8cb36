import { describe, expect, it } from "vitest";
import { KeyStatus, generateApiKey, type KeyUpsert } from "@tollgate/shared";
import type { StoredKey } from "../db/key-repository.js";
import { makeKey } from "../test-support/keys.js";
import { authenticate } from "./authenticate.js";
import { KeyIndex } from "./key-index.js";

const NOW = Date.parse("2025-06-01T12:00:00Z");

function stored(u: KeyUpsert, expiresAtMs: number | null = null): StoredKey {
  return {
    id: u.id,
    keyHash: Buffer.from(u.keyHash),
    prefix: u.keyPrefix,
    name: u.name,
    userId: u.userId,
    teamId: u.teamId,
    status: u.status,
    expiresAtMs,
    createdAtMs: 0,
  };
}

describe("authenticate", () => {
  const active = makeKey();
  const inactive = makeKey({ status: KeyStatus.INACTIVE });
  const revoked = makeKey({ status: KeyStatus.REVOKED });
  const expiring = makeKey();
  const index = new KeyIndex();
  index.replaceAll([
    stored(active.upsert),
    stored(inactive.upsert),
    stored(revoked.upsert),
    stored(expiring.upsert, NOW + 60_000),
  ]);
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
    expect(authenticate(bearer(generateApiKey().key), index, NOW)).toMatchObject({ ok: false, reason: "unknown", key: undefined });
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

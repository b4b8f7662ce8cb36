// Synthetic keys for the benches that build a key index or a gateway's SQLite cache directly.

/**
 * The i-th synthetic key as the gateway stores it (StoredKey): 1,000 users, 10 teams, no scopes.
 * `minted` is a generateApiKey() result; `gateway` holds KeyStatus and EMPTY_POLICY from the build measured.
 */
export function benchStoredKey(i, minted, now, { KeyStatus, EMPTY_POLICY }) {
  return {
    id: `ak_bench${String(i).padStart(18, "0")}`,
    keyHash: Buffer.from(minted.hash),
    prefix: minted.prefix,
    name: `bench key ${i}`,
    userId: `user_bench${i % 1000}`,
    teamId: `team_bench${i % 10}`,
    status: KeyStatus.ACTIVE,
    expiresAtMs: null,
    createdAtMs: now,
    policy: EMPTY_POLICY,
    metadataJson: "",
    previousKeyHash: null,
    previousKeyExpiresAtMs: null,
  };
}

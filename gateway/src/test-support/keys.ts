import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  ChangeSchema,
  KeyStatus,
  KeyUpsertSchema,
  generateApiKey,
  newId,
  type Change,
  type KeyUpsert,
} from "@tollgate/shared";

export interface TestKey {
  /** The secret, as a client would send it. */
  secret: string;
  upsert: KeyUpsert;
}

/** A fresh key and its sync message, as the control plane would send it. */
export function makeKey(
  overrides: { status?: KeyStatus; expiresAtMs?: number; name?: string; id?: string } = {},
): TestKey {
  const minted = generateApiKey();
  const upsert = create(KeyUpsertSchema, {
    id: overrides.id ?? newId("ak"),
    keyHash: minted.hash,
    keyPrefix: minted.prefix,
    name: overrides.name ?? "test key",
    userId: newId("user"),
    teamId: "",
    status: overrides.status ?? KeyStatus.ACTIVE,
    createdAt: timestampFromMs(Date.now()),
    ...(overrides.expiresAtMs !== undefined ? { expiresAt: timestampFromMs(overrides.expiresAtMs) } : {}),
  });
  return { secret: minted.key, upsert };
}

export function upsertChange(revision: number, key: KeyUpsert): Change {
  return create(ChangeSchema, { revision: BigInt(revision), op: { case: "keyUpsert", value: key } });
}

export function deleteChange(revision: number, id: string): Change {
  return create(ChangeSchema, { revision: BigInt(revision), op: { case: "keyDelete", value: { id } } });
}

import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { KeyStatus, KeyUpsertSchema, type KeyUpsert } from "@tollgate/shared";
import type { KeySyncRecord } from "../repositories/change-log.js";

const STATUS: Record<string, KeyStatus> = {
  active: KeyStatus.ACTIVE,
  inactive: KeyStatus.INACTIVE,
  expired: KeyStatus.EXPIRED,
  revoked: KeyStatus.REVOKED,
};

export function toKeyUpsert(r: KeySyncRecord): KeyUpsert {
  return create(KeyUpsertSchema, {
    id: r.id,
    keyHash: Buffer.from(r.key_hash, "hex"),
    keyPrefix: r.key_prefix,
    name: r.name,
    userId: r.user_id,
    teamId: r.team_id ?? "",
    status: STATUS[r.status] ?? KeyStatus.UNSPECIFIED,
    ...(r.expires_at ? { expiresAt: timestampFromDate(new Date(r.expires_at)) } : {}),
    createdAt: timestampFromDate(new Date(r.created_at)),
  });
}

import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  ChangeSchema,
  KeyStatus,
  KeyUpsertSchema,
  SigningKeySchema,
  ed25519PublicKeyToRaw,
  generateApiKey,
  newId,
  signEphemeralToken,
  type Change,
  type KeyUpsert,
  type SigningKey,
} from "@tollgate/shared";

export interface TestKey {
  /** The secret, as a client would send it. */
  secret: string;
  upsert: KeyUpsert;
}

export interface KeyOverrides {
  status?: KeyStatus;
  expiresAtMs?: number;
  name?: string;
  id?: string;
  allowedProviders?: string[];
  allowedModels?: string[];
  ipAllowlist?: string[];
  metadata?: Record<string, unknown>;
  rpmLimit?: number;
  tpmLimit?: number;
  budgetUsd?: number;
}

/** A fresh key and its sync message, as the control plane would send it. */
export function makeKey(overrides: KeyOverrides = {}): TestKey {
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
    allowedProviders: overrides.allowedProviders ?? [],
    allowedModels: overrides.allowedModels ?? [],
    ipAllowlist: overrides.ipAllowlist ?? [],
    metadataJson: overrides.metadata ? JSON.stringify(overrides.metadata) : "",
    ...(overrides.rpmLimit !== undefined ? { rpmLimit: BigInt(overrides.rpmLimit) } : {}),
    ...(overrides.tpmLimit !== undefined ? { tpmLimit: BigInt(overrides.tpmLimit) } : {}),
    ...(overrides.budgetUsd !== undefined ? { budgetUsd: overrides.budgetUsd } : {}),
  });
  return { secret: minted.key, upsert };
}

/** The same key with a new secret, as the control plane syncs a rotation; the old secret works until `graceUntilMs` when given. */
export function rotateKey(key: TestKey, graceUntilMs?: number): TestKey {
  const minted = generateApiKey();
  const upsert = create(KeyUpsertSchema, {
    ...key.upsert,
    keyHash: minted.hash,
    keyPrefix: minted.prefix,
    previousKeyHash: graceUntilMs === undefined ? new Uint8Array(0) : key.upsert.keyHash,
    ...(graceUntilMs === undefined
      ? { previousKeyExpiresAt: undefined }
      : { previousKeyExpiresAt: timestampFromMs(graceUntilMs) }),
  });
  return { secret: minted.key, upsert };
}

/** A copy of a key's sync message with some fields changed. */
export function withFields(key: KeyUpsert, fields: Partial<KeyUpsert>): KeyUpsert {
  return create(KeyUpsertSchema, { ...key, ...fields });
}

export function upsertChange(revision: number, key: KeyUpsert): Change {
  return create(ChangeSchema, { revision: BigInt(revision), op: { case: "keyUpsert", value: key } });
}

export function deleteChange(revision: number, id: string): Change {
  return create(ChangeSchema, { revision: BigInt(revision), op: { case: "keyDelete", value: { id } } });
}

/** An organization's token-signing key pair, as the control plane holds it. */
export interface TestSigningKey {
  id: string;
  privateKey: KeyObject;
  /** Its public half, as synced. */
  message: SigningKey;
}

export function makeSigningKey(id: string = newId("sk")): TestSigningKey {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return {
    id,
    privateKey,
    message: create(SigningKeySchema, {
      id,
      publicKey: ed25519PublicKeyToRaw(publicKey),
      createdAt: timestampFromMs(Date.now()),
    }),
  };
}

export function signingKeyChange(revision: number, key: SigningKey): Change {
  return create(ChangeSchema, { revision: BigInt(revision), op: { case: "signingKeyUpsert", value: key } });
}

/** An ephemeral token for `keyId`, as the control plane would issue it. */
export function mintToken(
  signer: TestSigningKey,
  claims: { keyId: string; orgId: string; nowMs?: number; ttlSeconds?: number },
): string {
  const iat = Math.floor((claims.nowMs ?? Date.now()) / 1000);
  return signEphemeralToken(
    { kid: signer.id, key_id: claims.keyId, org_id: claims.orgId, iat, exp: iat + (claims.ttlSeconds ?? 3600) },
    signer.privateKey,
  ).token;
}

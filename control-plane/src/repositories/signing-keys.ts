import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  generateKeyPairSync,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from "node:crypto";
import { ed25519PublicKeyToRaw, newId } from "@tollgate/shared";
import type { Db } from "../db/database.js";
import type { SigningKeyRecord } from "./change-log.js";
import { toBuffer, toIso } from "./rows.js";

/** AES-256-GCM key for sealing private keys at rest, derived from the master key. */
function sealingKey(masterKey: string): Buffer {
  return Buffer.from(hkdfSync("sha256", masterKey, "tollgate", "signing-key-seal", 32));
}

function seal(masterKey: string, plain: Buffer): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", sealingKey(masterKey), iv);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

function unseal(masterKey: string, sealed: Buffer): Buffer | undefined {
  try {
    const decipher = createDecipheriv("aes-256-gcm", sealingKey(masterKey), sealed.subarray(0, 12));
    decipher.setAuthTag(sealed.subarray(12, 28));
    return Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]);
  } catch {
    return undefined;
  }
}

export interface SigningKey {
  id: string;
  privateKey: KeyObject;
  record: SigningKeyRecord;
}

/**
 * The organization's newest usable signing key. A new one is made when there is
 * none, or when the master key changed and the sealed private key no longer opens;
 * `created` tells the caller to sync its public half.
 */
export async function currentSigningKey(
  trx: Db,
  orgId: string,
  masterKey: string,
): Promise<SigningKey & { created: boolean }> {
  const row = await trx
    .selectFrom("signing_keys")
    .selectAll()
    .where("org_id", "=", orgId)
    .orderBy("id", "desc")
    .executeTakeFirst();
  if (row) {
    const der = unseal(masterKey, toBuffer(row.private_key_sealed));
    if (der) {
      return {
        id: row.id,
        privateKey: createPrivateKey({ key: der, format: "der", type: "pkcs8" }),
        record: {
          id: row.id,
          public_key: toBuffer(row.public_key).toString("hex"),
          created_at: toIso(row.created_at)!,
        },
        created: false,
      };
    }
  }
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const id = newId("sk");
  const raw = ed25519PublicKeyToRaw(publicKey);
  const inserted = await trx
    .insertInto("signing_keys")
    .values({
      id,
      org_id: orgId,
      public_key: raw,
      private_key_sealed: seal(masterKey, privateKey.export({ format: "der", type: "pkcs8" })),
    })
    .returning("created_at")
    .executeTakeFirstOrThrow();
  return {
    id,
    privateKey,
    record: { id, public_key: raw.toString("hex"), created_at: toIso(inserted.created_at)! },
    created: true,
  };
}

/** Public halves of every signing key of the organization, for snapshots. */
export async function allSigningKeyRecords(trx: Db, orgId: string): Promise<SigningKeyRecord[]> {
  const rows = await trx
    .selectFrom("signing_keys")
    .select(["id", "public_key", "created_at"])
    .where("org_id", "=", orgId)
    .orderBy("id")
    .execute();
  return rows.map((r) => ({
    id: r.id,
    public_key: toBuffer(r.public_key).toString("hex"),
    created_at: toIso(r.created_at)!,
  }));
}

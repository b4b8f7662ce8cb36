import { newId, type IdPrefix } from "@tollgate/shared";
import type { Insertable, Selectable } from "kysely";
import type { Db } from "../db/database.js";
import type { Database } from "../db/schema.js";

/**
 * The statements that teams and users share: rows that belong to one organization,
 * named by their own id, with `created_at` and `updated_at`, handed back as the
 * repository's domain object.
 */
export type OrgTable = "teams" | "users";
type RowOf<T extends OrgTable> = Selectable<Database[T]>;
type Column<T extends OrgTable> = keyof RowOf<T> & string;

const ID_PREFIX: Record<OrgTable, IdPrefix> = { teams: "team", users: "user" };

export interface Page {
  /** Rows after this id (the cursor). */
  after?: string | undefined;
  limit: number;
}

export function orgRepository<T extends OrgTable, D>(table: T, toDomain: (row: RowOf<T>) => D) {
  // A union of table names, not the type parameter, is what Kysely can resolve `org_id` and `id` on.
  const from = table as OrgTable;
  const domain = (row: unknown) => toDomain(row as RowOf<T>);
  return {
    /** Inserts a row of the organization under a new id, created and updated now. */
    async insert(
      trx: Db,
      orgId: string,
      values: Omit<Insertable<Database[T]>, "id" | "org_id" | "created_at" | "updated_at">,
    ): Promise<D> {
      const now = new Date();
      const row = await trx
        .insertInto(from)
        .values({ id: newId(ID_PREFIX[table]), org_id: orgId, ...values, created_at: now, updated_at: now } as never)
        .returningAll()
        .executeTakeFirstOrThrow();
      return domain(row);
    },

    /** The organization's row whose unique `column` holds `value`. */
    async find(db: Db, orgId: string, column: Column<T>, value: string): Promise<D | undefined> {
      const row = await db
        .selectFrom(from)
        .selectAll()
        .where("org_id", "=", orgId)
        .where(column as "id", "=", value)
        .executeTakeFirst();
      return row && domain(row);
    },

    /** A page of the organization's rows in id order, only those whose `filter.column` holds `filter.value` when it is set. */
    async list(
      db: Db,
      orgId: string,
      page: Page,
      filter?: { column: Column<T>; value: string | undefined },
    ): Promise<D[]> {
      let q = db.selectFrom(from).selectAll().where("org_id", "=", orgId);
      if (filter?.value) q = q.where(filter.column as "id", "=", filter.value);
      if (page.after) q = q.where("id", ">", page.after);
      return (await q.orderBy("id").limit(page.limit).execute()).map(domain);
    },

    /** Sets those of `columns` that `patch` holds (not undefined), and `updated_at`; undefined when there is no such row. */
    async update<P extends object>(
      trx: Db,
      orgId: string,
      id: string,
      patch: P,
      columns: readonly (keyof P & Column<T>)[],
    ): Promise<D | undefined> {
      const set: Record<string, unknown> = {};
      for (const column of columns) if (patch[column] !== undefined) set[column] = patch[column];
      const row = await trx
        .updateTable(from)
        .set({ ...set, updated_at: new Date() })
        .where("org_id", "=", orgId)
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirst();
      return row && domain(row);
    },

    async delete(trx: Db, orgId: string, id: string): Promise<D | undefined> {
      const row = await trx
        .deleteFrom(from)
        .where("org_id", "=", orgId)
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirst();
      return row && domain(row);
    },
  };
}

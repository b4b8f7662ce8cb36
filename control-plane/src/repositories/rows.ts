/** Normalisers for values that pg and PGlite return in different shapes. */
export function toNumber(value: string | number | bigint | null | undefined): number {
  return value === null || value === undefined ? 0 : Number(value);
}

export function toNullableNumber(value: string | number | bigint | null | undefined): number | null {
  return value === null || value === undefined ? null : Number(value);
}

export function toBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export function toIso(value: Date | string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return (value instanceof Date ? value : new Date(value)).toISOString();
}

/** The nullable int8 `columns` of a row as numbers, under the same names. */
export function nullableNumbers<R, K extends keyof R>(row: R, columns: readonly K[]): { [P in K]: number | null } {
  const out = {} as { [P in K]: number | null };
  for (const column of columns) out[column] = toNullableNumber(row[column] as string | number | bigint | null);
  return out;
}

/** `created_at` and `updated_at` as ISO-8601 strings. */
export function timestamps(row: { created_at: Date | string; updated_at: Date | string }): {
  created_at: string;
  updated_at: string;
} {
  return { created_at: toIso(row.created_at)!, updated_at: toIso(row.updated_at)! };
}

/** `text` with LIKE's wildcards escaped (`\` is the default escape in Postgres), to match literally. */
export function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

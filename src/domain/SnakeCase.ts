/**
 * Fields of the bucket's snake_case JSON: every stored object (task, worker record, schedule,
 * lease, cursor, …) names its fields as the reference does (`task_type`, `lease_expires_at`), while
 * the TypeScript side is camelCase. These helpers say that once, for every schema.
 *
 * @since 0.1.0
 * @module
 */
import { Schema } from "effect"

/**
 * A required field stored under `key`.
 *
 * @since 0.1.0
 * @category codec
 */
export const field = <S extends Schema.Schema.Any, K extends string>(schema: S, key: K) =>
  Schema.propertySignature(schema).pipe(Schema.fromKey(key))

/**
 * An optional field stored under `key`: absent when missing (never written as `null`).
 *
 * @since 0.1.0
 * @category codec
 */
export const optionalField = <S extends Schema.Schema.Any, K extends string>(schema: S, key: K) =>
  Schema.optionalWith(schema, { exact: true }).pipe(Schema.fromKey(key))

/**
 * An optional field stored under `key` that the reference may also write as `null`: both read
 * as missing.
 *
 * @since 0.1.0
 * @category codec
 */
export const nullableField = <S extends Schema.Schema.Any, K extends string>(schema: S, key: K) =>
  Schema.optionalWith(schema, { exact: true, nullable: true }).pipe(Schema.fromKey(key))

/**
 * The version of this buquet, written into every worker record (`buquet_version`) so an operator
 * can tell which fleet members run what, and printed by `buquet --version`. Kept equal to
 * package.json's `version` (a test checks it).
 *
 * @since 0.1.0
 * @module
 */

/**
 * This release's version.
 *
 * @since 0.1.0
 * @category constants
 */
export const buquetVersion = "0.1.0"

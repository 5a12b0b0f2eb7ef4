/**
 * The check a connection makes when it opens (design.md §4): can this bucket hold a queue? A
 * versioned bucket on a server that ignores conditional writes in it (Ceph RGW) would accept
 * submits that no worker can claim safely, so it is refused with the reason `doctor` gives. The
 * cost is one GetBucketVersioning per connection; the write probe runs only on a versioned bucket.
 *
 * @module
 */
import { Effect } from "effect"
import { UnusableBucket, versionedWithoutConditionalWrites } from "../domain/StorageError.js"
import type { StorageReadError } from "../domain/StorageError.js"
import type { StorageService } from "../services/Storage.js"

/** Fails with {@link UnusableBucket} when `bucket` is versioned and conditional writes are not enforced in it. */
export const refuseUnusableBucket = (
  storage: StorageService,
  bucket: string
): Effect.Effect<void, UnusableBucket | StorageReadError> =>
  Effect.gen(function*() {
    if ((yield* storage.versioning) !== "enabled") return
    const capabilities = yield* storage.capabilities
    if (!capabilities.conditionalWrites) {
      return yield* new UnusableBucket({ bucket, message: `bucket ${bucket}: ${versionedWithoutConditionalWrites}` })
    }
  }).pipe(Effect.withSpan("BucketCheck.refuseUnusableBucket"))

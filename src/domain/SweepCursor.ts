/**
 * The sweeper's persisted cursor (`control/sweep/cursor.json`): where a full sweep of the bucket
 * stands, so that a sweep makes progress across restarts and leader changes (the reference keeps
 * its cursors in memory and rebuilds the sweeper every cycle, so it never gets far: trap 5.2 #7).
 *
 * A pass walks the shards in key order (`tasks/{shard}/`, then that shard's `ready/` and `leases/`
 * markers). The cursor names the last shard finished and, inside the current shard, the last task
 * key processed. It also carries the pass's running totals, so the report of a pass that was
 * resumed still covers the whole pass.
 *
 * @module
 */
import { Schema } from "effect"
import { controlKey } from "./Keys.js"
import { Timestamp } from "./Task.js"
import { field, optionalField } from "./SnakeCase.js"

/** Counts of one sweep pass: what was looked at, what was repaired, what it cost. */
export class SweepTotals extends Schema.Class<SweepTotals>("SweepTotals")({
  shards: Schema.NonNegativeInt,
  tasks: Schema.NonNegativeInt,
  readyMarkersWritten: field(Schema.NonNegativeInt, "ready_markers_written"),
  leaseMarkersWritten: field(Schema.NonNegativeInt, "lease_markers_written"),
  staleMarkersDeleted: field(Schema.NonNegativeInt, "stale_markers_deleted"),
  expired: Schema.NonNegativeInt,
  leasesRecovered: field(Schema.NonNegativeInt, "leases_recovered"),
  retentionDeleted: field(Schema.NonNegativeInt, "retention_deleted"),
  retentionArchived: field(Schema.NonNegativeInt, "retention_archived"),
  malformed: Schema.NonNegativeInt,
  /** Tasks whose read or repair kept failing (after retries): left untouched, with their markers, until the next pass. */
  skipped: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 0 }),
  /** Completed tasks whose follow-ups were not all created (their worker died first): created now. */
  followUpsCreated: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 0 }).pipe(Schema.fromKey("follow_ups_created")),
  /** Flows whose work a crashed process left (children to create, a parent to tell): done now (domain/Flows.ts). */
  flowsRecovered: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 0 }).pipe(Schema.fromKey("flows_recovered")),
  /** Orphaned payloads deleted at the end of the pass (see `PayloadCollection.ts`). */
  payloadsDeleted: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 0 }).pipe(Schema.fromKey("payloads_deleted")),
  /**
   * Tasks changed moments ago (less than the sweeper's `youngAge`) that a ready or lease marker of
   * their shard already points at: not read in this pass (a worker or lease recovery reaches them
   * through that marker); the first pass that finds them older reads them.
   */
  leftYoung: Schema.optionalWith(Schema.NonNegativeInt, { default: () => 0 }).pipe(Schema.fromKey("left_young")),
  /** Requests by kind (PUT, GET, LIST, DELETE, HEAD) the pass made so far, cursor writes included. */
  requests: Schema.Record({ key: Schema.String, value: Schema.NonNegativeInt })
}) {
  /** All zero. */
  static readonly zero = new SweepTotals({
    shards: 0,
    tasks: 0,
    readyMarkersWritten: 0,
    leaseMarkersWritten: 0,
    staleMarkersDeleted: 0,
    expired: 0,
    leasesRecovered: 0,
    retentionDeleted: 0,
    retentionArchived: 0,
    malformed: 0,
    skipped: 0,
    followUpsCreated: 0,
    flowsRecovered: 0,
    payloadsDeleted: 0,
    leftYoung: 0,
    requests: {}
  })
}

/** The persisted position of the current sweep pass. */
export class SweepCursor extends Schema.Class<SweepCursor>("SweepCursor")({
  /** Fresh per pass. */
  passId: field(Schema.String, "pass_id"),
  startedAt: field(Timestamp, "started_at"),
  updatedAt: field(Timestamp, "updated_at"),
  /** The last shard whose tasks and markers are all done (absent: none yet). */
  doneShard: optionalField(Schema.String, "done_shard"),
  /** Inside the shard after `doneShard`: the last task key processed (absent: none yet). */
  taskAfter: optionalField(Schema.String, "task_after"),
  /** Set when the pass has finished; the next pass starts from the first shard. */
  finishedAt: optionalField(Timestamp, "finished_at"),
  totals: SweepTotals
}) {}

/** `control/sweep/cursor.json`. */
export const sweepCursorKey: string = controlKey("sweep/cursor.json")

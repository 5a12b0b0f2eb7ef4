/**
 * The queue settings a worker follows, above all the shard prefix length it polls at. A worker
 * on a stack built by hand may see up to three answers: its `shardPrefixLen` option, the Queue in
 * context, and the queue its Scheduler submits cron firings with (`layerWorkerServices(config)`).
 * They must agree: a worker polling another length than its producers write at leaves their
 * tasks to nobody, and nothing would ever say so.
 *
 * @module
 */
import { Either, Option } from "effect"
import type { QueueConfig } from "../../domain/QueueConfig.js"
import { InvalidWorkerOptions } from "./Errors.js"

/** What the worker follows: the queue settings and the prefix length it polls at. */
export interface WorkerLayout {
  readonly config: QueueConfig
  readonly shardPrefixLen: number
}

/**
 * The Queue in context's settings if there is one, else the Scheduler's queue's; the prefix length
 * is the option's if given. Refused when any two of the three disagree on the prefix length.
 */
export const resolveLayout = (p: {
  readonly option: number | undefined
  readonly queue: Option.Option<QueueConfig>
  readonly scheduler: QueueConfig
}): Either.Either<WorkerLayout, InvalidWorkerOptions> => {
  const config = Option.getOrElse(p.queue, () => p.scheduler)
  const shardPrefixLen = p.option ?? config.shardPrefixLen
  const said: Array<readonly [string, number]> = []
  if (p.option !== undefined) said.push(["its shardPrefixLen option polls at", p.option])
  if (Option.isSome(p.queue)) said.push(["the Queue in context writes at", p.queue.value.shardPrefixLen])
  said.push(["the Scheduler's queue (layerWorkerServices' config) writes at", p.scheduler.shardPrefixLen])
  if (said.every(([, n]) => n === shardPrefixLen)) return Either.right({ config, shardPrefixLen })
  return Either.left(
    new InvalidWorkerOptions({
      option: "shardPrefixLen",
      message: `this worker's parts disagree on the shard prefix length: ${said.map(([who, n]) => `${who} ${n}`).join(", ")}; ` +
        `tasks written at one length are never found by a worker polling another. Build every part with the ` +
        `queue's config, e.g. layerWorkerServices({ shardPrefixLen: ${config.shardPrefixLen} }) beside ` +
        `QueueLayer.layer({ shardPrefixLen: ${config.shardPrefixLen} }) (or use a Buquet layer, which builds them together)`
    })
  )
}

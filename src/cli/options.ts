/**
 * The programs' options from the resolved configuration: what `buquet worker`, `buquet monitor`
 * and `buquet dashboard` run with. Kept beside the commands (not in `layers/Config.ts`) because
 * the option types belong to the programs, which sit above the layers.
 *
 * @module
 */
import { Duration, Redacted } from "effect"
import type { DashboardOptions } from "../programs/Dashboard.js"
import type { MonitorOptions } from "../programs/Monitor.js"
import type { PollingOptions, WorkerOptions } from "../programs/Worker.js"
import type { DashboardSettings, MonitorSettings, PollingSettings, WorkerSettings } from "../services/BuquetConfig.js"

/**
 * The Worker's options from `[worker]`, `[worker.polling]`, `[worker.shard_leasing]` and, for the
 * embedded monitor, `[monitor]` (design.md §6); `fallbackId` names the worker when no id is
 * configured. Every field of {@link WorkerSettings} lands here.
 */
export const workerOptions = (
  settings: WorkerSettings,
  shardPrefixLen: number,
  fallbackId: string,
  monitor: MonitorSettings
): WorkerOptions => ({
  id: settings.id ?? fallbackId,
  monitor: settings.monitor ? monitorOptions(monitor) : false,
  scheduler: settings.scheduler,
  shardLeasing: settings.shardLeasing.enabled
    ? {
      shardsPerWorker: settings.shardLeasing.shardsPerWorker,
      leaseTtl: Duration.seconds(settings.shardLeasing.leaseTtlSecs),
      renewInterval: Duration.seconds(settings.shardLeasing.renewalIntervalSecs)
    }
    : false,
  concurrency: settings.concurrency,
  pageSize: settings.readyPageSize,
  shardPrefixLen,
  shards: settings.shards,
  shutdownGracePeriod: Duration.seconds(settings.shutdownGraceSecs),
  heartbeat: { busy: Duration.seconds(settings.heartbeatBusySecs), idle: Duration.seconds(settings.heartbeatIdleSecs) },
  polling: pollingOptions(settings.polling)
})

/** The polling Schedule's options from `[worker.polling]`. */
export const pollingOptions = (p: PollingSettings): PollingOptions =>
  p.strategy === "fixed"
    ? { _tag: "Fixed", interval: Duration.millis(p.intervalMs) }
    : { _tag: "Adaptive", min: Duration.millis(p.minIntervalMs), max: Duration.millis(p.maxIntervalMs), factor: p.backoffMultiplier }

/** The Monitor's options from `[monitor]`; `holderId` names this instance in the leader election. */
export const monitorOptions = (m: MonitorSettings, holderId?: string): MonitorOptions => ({
  checkInterval: Duration.seconds(m.checkIntervalSecs),
  sweepInterval: Duration.seconds(m.sweepIntervalSecs),
  maxTasksPerScan: m.maxTasksPerScan,
  maxObjectsPerSweep: m.maxObjectsPerSweep,
  sweepMode: m.sweepMode,
  workers: { staleAfter: Duration.seconds(m.workerHealthThresholdSecs) },
  quiet: m.quietCheckIntervalSecs === 0 ? false : { checkInterval: Duration.seconds(m.quietCheckIntervalSecs) },
  retention: m.retentionDays === undefined ? undefined : { olderThan: Duration.days(m.retentionDays), action: m.retentionAction },
  ...(holderId === undefined ? {} : { leader: { holderId } })
})

/** The Dashboard's options from `[dashboard]`. */
export const dashboardOptions = (d: DashboardSettings): DashboardOptions => ({
  host: d.host,
  port: d.port,
  token: d.token === undefined ? undefined : Redacted.value(d.token),
  refreshInterval: Duration.seconds(d.refreshSecs),
  maxEventStreams: d.maxStreams
})

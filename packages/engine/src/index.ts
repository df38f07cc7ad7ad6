export { CALLBACK_MAX_ATTEMPTS } from './callback'
export { BUILTIN_COMPONENTS, createComponentRegistry, defineComponent } from './components'
export {
  checkCron,
  isTimeZone,
  latestDue,
  localTimeZone,
  nextDue,
  nextDues,
  utcOffsetIn,
  wallClockStamp,
} from './cron'
export { createEngine } from './engine'
export { loadComponentModules } from './load-components'
export {
  createOutboundClient,
  forbiddenRange,
  OUTBOUND_DEFAULTS,
  type OutboundClient,
  OutboundError,
  type OutboundOptions,
  parseAllowList,
} from './outbound'
export { LOOP_LIMIT } from './plan'
export type {
  Effect,
  NodeOperationRequest,
  NodeOperationResult,
  OperationResult,
  Operator,
  TaskOperationRequest,
} from './protocol'
export { writeOperateRecord } from './protocol'
export {
  createScheduler,
  FAULT_AFTER_TASK_CREATED,
  type ScheduledStart,
  type ScheduledStartResult,
  type StartScheduledTask,
} from './schedules'
export {
  createSecretBox,
  type SecretBox,
  SecretOpenError,
  scrubbingLogger,
  sealRetryInputs,
  sealTreeSecrets,
} from './secrets'
export {
  type Attempt,
  appendTaskEvent,
  insertEvents,
  type OperateRecordInput,
  readAttemptLog,
  readAttempts,
  TASK_EVENTS_CHANNEL,
  type TaskVersion,
} from './store'
export { type EngineErrorCause, type EngineTelemetry, NO_TELEMETRY } from './telemetry'
export type {
  ComponentContext,
  ComponentModule,
  ComponentRegistry,
  ComponentResult,
  Engine,
  EngineDeps,
  WorkerMode,
} from './types'
export { LOG_LIMITS, REVOKE_CHANNEL, WORK_CHANNEL } from './worker'

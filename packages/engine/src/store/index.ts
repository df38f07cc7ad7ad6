/**
 * Every statement the engine runs lives in these modules, each through the `sql` tagged template:
 * no SQL in the worker, the transitions or the protocol.
 */
export * from './events'
export * from './jobs'
export * from './nodes'
export * from './schedules'
export * from './tasks'

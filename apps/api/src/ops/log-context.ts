import { AsyncLocalStorage } from 'node:async_hooks'

/**
 * Fields every log line written while handling one request carries, whichever logger writes it
 * (a route, a service, the engine called from the request): the logger's mixin reads them from
 * here. `request_id` is the legacy envelope's request id (X-Request-Id when the caller sent a
 * well-formed one).
 */
export interface LogContext {
  request_id?: string
}

const storage = new AsyncLocalStorage<LogContext>()

export function runWithLogContext<T>(context: LogContext, fn: () => T): T {
  return storage.run(context, fn)
}

export function currentLogContext(): LogContext {
  return storage.getStore() ?? {}
}

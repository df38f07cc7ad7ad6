import { router } from './init'
import { consoleRouter } from './routers/console'
import { clockedRouter, periodicRouter } from './routers/schedules'
import { sessionRouter } from './routers/session'
import { taskRouter } from './routers/task'
import { templateRouter } from './routers/template'

export const appRouter = router({
  task: taskRouter,
  template: templateRouter,
  periodic: periodicRouter,
  clocked: clockedRouter,
  session: sessionRouter,
  console: consoleRouter,
})

export type AppRouter = typeof appRouter

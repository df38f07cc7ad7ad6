import { router } from './init'
import { clockedRouter, periodicRouter } from './routers/schedules'
import { taskRouter } from './routers/task'
import { templateRouter } from './routers/template'

export const appRouter = router({
  task: taskRouter,
  template: templateRouter,
  periodic: periodicRouter,
  clocked: clockedRouter,
})

export type AppRouter = typeof appRouter

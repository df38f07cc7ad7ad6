import { router } from './init'
import { taskRouter } from './routers/task'
import { templateRouter } from './routers/template'

export const appRouter = router({
  task: taskRouter,
  template: templateRouter,
})

export type AppRouter = typeof appRouter

import { router } from './init'
import { pluginRouter, projectRouter } from './routers/catalogue'
import { consoleRouter } from './routers/console'
import { nodeRouter } from './routers/node'
import { pluginGatewayRouter } from './routers/plugin-gateway'
import { clockedRouter, periodicRouter } from './routers/schedules'
import { sessionRouter } from './routers/session'
import { taskRouter } from './routers/task'
import { templateRouter } from './routers/template'

export const appRouter = router({
  task: taskRouter,
  node: nodeRouter,
  template: templateRouter,
  periodic: periodicRouter,
  clocked: clockedRouter,
  session: sessionRouter,
  console: consoleRouter,
  project: projectRouter,
  plugin: pluginRouter,
  pluginGateway: pluginGatewayRouter,
})

export type AppRouter = typeof appRouter

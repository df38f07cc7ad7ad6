import { myProjects } from '../../services/my-projects'
import { authedProcedure, router } from '../init'

/** What only the console's pages ask for. */
export const consoleRouter = router({
  projects: authedProcedure.query(({ ctx }) => myProjects(ctx.deps, ctx.caller)),
})

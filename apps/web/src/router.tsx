import type { QueryClient } from '@tanstack/react-query'
import { createRootRouteWithContext, createRoute, createRouter, redirect } from '@tanstack/react-router'
import { Shell } from './components/shell'
import { NewTaskPage } from './pages/new-task'
import { NotFoundPage } from './pages/not-found'
import { ProjectsPage } from './pages/projects'
import { SchedulesPage } from './pages/schedules'
import { SignInPage } from './pages/sign-in'
import { TaskPage } from './pages/task'
import { TasksPage } from './pages/tasks'
import { TemplatePage } from './pages/template'
import { TemplatesPage } from './pages/templates'
import {
  bizIdParams,
  SchedulesSearchSchema,
  SignInSearchSchema,
  TaskSearchSchema,
  TasksSearchSchema,
  TemplateSearchSchema,
  taskIdParams,
  templateIdParams,
} from './routes'

const root = createRootRouteWithContext<{ queryClient: QueryClient }>()({
  component: Shell,
  notFoundComponent: NotFoundPage,
})

const index = createRoute({
  getParentRoute: () => root,
  path: '/',
  beforeLoad: () => {
    throw redirect({ to: '/projects' })
  },
})

const signIn = createRoute({
  getParentRoute: () => root,
  path: '/sign-in',
  validateSearch: SignInSearchSchema,
  component: SignInPage,
})

const projects = createRoute({ getParentRoute: () => root, path: '/projects', component: ProjectsPage })

const tasks = createRoute({
  getParentRoute: () => root,
  path: '/projects/$bizId/tasks',
  params: bizIdParams,
  validateSearch: TasksSearchSchema,
  component: TasksPage,
})

const task = createRoute({
  getParentRoute: () => root,
  path: '/projects/$bizId/tasks/$taskId',
  params: {
    parse: (p: { bizId: string; taskId: string }) => ({ ...bizIdParams.parse(p), ...taskIdParams.parse(p) }),
    stringify: (p: { bizId: number; taskId: number }) => ({
      ...bizIdParams.stringify(p),
      ...taskIdParams.stringify(p),
    }),
  },
  validateSearch: TaskSearchSchema,
  component: TaskPage,
})

const templates = createRoute({
  getParentRoute: () => root,
  path: '/projects/$bizId/templates',
  params: bizIdParams,
  component: TemplatesPage,
})

const templateParams = {
  parse: (p: { bizId: string; templateId: string }) => ({
    ...bizIdParams.parse(p),
    ...templateIdParams.parse(p),
  }),
  stringify: (p: { bizId: number; templateId: number }) => ({
    ...bizIdParams.stringify(p),
    ...templateIdParams.stringify(p),
  }),
}

const template = createRoute({
  getParentRoute: () => root,
  path: '/projects/$bizId/templates/$templateId',
  params: templateParams,
  validateSearch: TemplateSearchSchema,
  component: TemplatePage,
})

const newTask = createRoute({
  getParentRoute: () => root,
  path: '/projects/$bizId/templates/$templateId/new',
  params: templateParams,
  component: NewTaskPage,
})

const schedules = createRoute({
  getParentRoute: () => root,
  path: '/projects/$bizId/schedules',
  params: bizIdParams,
  validateSearch: SchedulesSearchSchema,
  component: SchedulesPage,
})

const routeTree = root.addChildren([
  index,
  signIn,
  projects,
  tasks,
  task,
  templates,
  template,
  newTask,
  schedules,
])

export function makeRouter(queryClient: QueryClient) {
  return createRouter({
    routeTree,
    context: { queryClient },
    defaultPreload: 'intent',
    scrollRestoration: true,
  })
}

declare module '@tanstack/react-router' {
  interface Register {
    router: ReturnType<typeof makeRouter>
  }
}

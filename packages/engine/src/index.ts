export { CALLBACK_MAX_ATTEMPTS } from './callback'
export { BUILTIN_COMPONENTS, createComponentRegistry, defineComponent } from './components'
export { createEngine } from './engine'
export { loadComponentModules } from './load-components'
export { LOOP_LIMIT } from './plan'
export { appendTaskEvent, insertEvents } from './store'
export type {
  ComponentContext,
  ComponentModule,
  ComponentRegistry,
  ComponentResult,
  Engine,
  EngineDeps,
  TaskAction,
  WorkerMode,
} from './types'
export { REVOKE_CHANNEL, WORK_CHANNEL } from './worker'

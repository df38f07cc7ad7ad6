export { CALLBACK_MAX_ATTEMPTS } from './callback'
export { BUILTIN_COMPONENTS, createComponentRegistry, defineComponent } from './components'
export { createEngine, REVOKE_CHANNEL, WORK_CHANNEL } from './engine'
export { appendTaskEvent, insertEvents } from './events'
export { loadComponentModules } from './load-components'
export { LOOP_LIMIT } from './plan'
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

import type { ComponentModule, ComponentRegistry } from '../types'
import { fail } from './fail'
import { httpRequest } from './http-request'
import { pauseNode } from './pause-node'
import { setVariables } from './set-variables'
import { sleepTimer } from './sleep-timer'

export { defineComponent, sleep } from './define'
export { fail, httpRequest, pauseNode, setVariables, sleepTimer }

/** The components every engine has. */
export const BUILTIN_COMPONENTS: readonly ComponentModule[] = [
  sleepTimer,
  pauseNode,
  httpRequest,
  setVariables,
  fail,
]

/** The built-ins plus `extra`; a code registered twice is refused, naming it. */
export function createComponentRegistry(extra: readonly ComponentModule[] = []): ComponentRegistry {
  const byCode = new Map<string, ComponentModule>()
  for (const module of [...BUILTIN_COMPONENTS, ...extra]) {
    if (byCode.has(module.code)) throw new Error(`component ${module.code} is registered twice`)
    byCode.set(module.code, module)
  }
  return {
    has: (code) => byCode.has(code),
    get: (code) => byCode.get(code),
    list: () => [...byCode.values()],
  }
}

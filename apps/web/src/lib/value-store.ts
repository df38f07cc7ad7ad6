import { useSyncExternalStore } from 'react'

/** A value that components subscribe to, outside React's tree (no provider re-renders everyone). */
export interface ValueStore<T> {
  get(): T
  set(next: T): void
  subscribe(listener: () => void): () => void
}

export function createValueStore<T>(initial: T): ValueStore<T> {
  let value = initial
  const listeners = new Set<() => void>()
  return {
    get: () => value,
    set(next) {
      if (Object.is(next, value)) return
      value = next
      for (const l of listeners) l()
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}

/** The slice `select` picks from a store; the component re-renders only when that slice changes. */
export function useStoreValue<T, S>(
  store: { get(): T; subscribe(l: () => void): () => void },
  select: (v: T) => S,
): S {
  return useSyncExternalStore(
    store.subscribe,
    () => select(store.get()),
    () => select(store.get()),
  )
}

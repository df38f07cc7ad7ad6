import { useEffect, useState } from 'react'
import { useApp } from '../app-context'
import { refusalOf } from '../trpc'
import { isEnded, type TaskStore } from './task-live'

export type StreamStatus = 'connecting' | 'live' | 'ended' | { refused: unknown }

/**
 * Follows `task.events` into the store from its last seq. The browser's EventSource reconnects by
 * itself after a drop and tells the server the last id it saw; should the stream end or fail
 * before the task's final event (a restart in between, a proxy closing it), it is opened again
 * from the store's last seq. While the browser says it is offline the stream is closed, and it is
 * opened again from the last seq when the browser is back. Either way the store receives each
 * event once, in order.
 */
export function useTaskEvents(store: TaskStore | null, bizId: number, taskId: number): StreamStatus {
  const { client, connection } = useApp()
  const [status, setStatus] = useState<StreamStatus>('connecting')
  useEffect(() => {
    if (!store) return
    let stopped = false
    let done = false
    let retry: ReturnType<typeof setTimeout> | undefined
    let sub: { unsubscribe(): void } | null = null
    const close = () => {
      clearTimeout(retry)
      sub?.unsubscribe()
      sub = null
    }
    const again = (ms: number) => {
      close()
      if (!stopped) retry = setTimeout(open, ms)
    }
    function open() {
      if (stopped || done || sub !== null || !connection.browserOnline.get()) return
      store!.flush()
      const last = store!.get().lastSeq
      sub = client.task.events.subscribe(
        { bk_biz_id: bizId, task_id: taskId, ...(last > 0 ? { lastEventId: String(last) } : {}) },
        {
          onStarted: () => {
            connection.online('stream')
            setStatus('live')
          },
          onData: ({ data }) => store!.push([{ ...data, data: data.data ?? null }]),
          onConnectionStateChange: (s) => {
            if (s.state === 'connecting' && s.error) {
              connection.offline('stream')
              setStatus('connecting')
            }
            if (s.state === 'pending') {
              connection.online('stream')
              setStatus('live')
            }
          },
          onComplete: () => {
            if (stopped) return
            store!.flush()
            if (isEnded(store!.get())) {
              done = true
              sub = null
              setStatus('ended')
            } else again(1000)
          },
          onError: (err) => {
            if (stopped) return
            if (refusalOf(err).network) {
              connection.offline('stream')
              again(2000)
            } else {
              done = true
              sub = null
              setStatus({ refused: err })
            }
          },
        },
      )
    }
    const offBrowser = connection.browserOnline.subscribe(() => {
      if (connection.browserOnline.get()) open()
      else {
        close()
        setStatus('connecting')
      }
    })
    open()
    return () => {
      stopped = true
      offBrowser()
      close()
      connection.online('stream')
    }
  }, [store, client, connection, bizId, taskId])
  return status
}

/**
 * `value`, passed on at most once per `ms` (the latest one, at the end of each window): what a
 * refetch keyed on the event count needs during a burst of events.
 */
export function useThrottled<T>(value: T, ms: number): T {
  const [shown, setShown] = useState(value)
  const [last, setLast] = useState(0)
  useEffect(() => {
    if (Object.is(value, shown)) return
    const wait = Math.max(0, last + ms - Date.now())
    const t = setTimeout(() => {
      setShown(value)
      setLast(Date.now())
    }, wait)
    return () => clearTimeout(t)
  }, [value, shown, last, ms])
  return shown
}

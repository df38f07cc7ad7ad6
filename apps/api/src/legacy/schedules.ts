import {
  CreateClockedTaskParamsSchema,
  CreatePeriodicTaskParamsSchema,
  GetClockedTaskListParamsSchema,
  GetPeriodicTaskInfoParamsSchema,
  GetPeriodicTaskListParamsSchema,
  ModifyConstantsForPeriodicTaskParamsSchema,
  ModifyCronForPeriodicTaskParamsSchema,
  SetPeriodicTaskEnabledParamsSchema,
} from '@stdops/core'
import type { z } from 'zod'
import { refOf as ref } from '../services/projects'
import * as schedules from '../services/schedules'
import type { LegacyApi } from './apis'

const api = <S extends z.ZodType>(a: LegacyApi<S>) => a as unknown as LegacyApi

/** The schedule APIs (periodic and clocked tasks), each an adapter: params in, one service call, data out. */
export const SCHEDULE_APIS: Record<string, LegacyApi> = {
  create_periodic_task: api({
    method: 'POST',
    params: CreatePeriodicTaskParamsSchema,
    run: async (d, c, p) => ({ data: await schedules.createPeriodicTask(d, c, ref(p), p) }),
  }),
  get_periodic_task_list: api({
    method: 'GET',
    params: GetPeriodicTaskListParamsSchema,
    run: async (d, c, p) => ({ data: await schedules.listPeriodicTasks(d, c, ref(p)) }),
  }),
  get_periodic_task_info: api({
    method: 'GET',
    params: GetPeriodicTaskInfoParamsSchema,
    run: async (d, c, p) => ({ data: await schedules.getPeriodicTask(d, c, ref(p), p.task_id) }),
  }),
  set_periodic_task_enabled: api({
    method: 'POST',
    params: SetPeriodicTaskEnabledParamsSchema,
    run: async (d, c, p) => ({
      data: await schedules.setPeriodicTaskEnabled(d, c, ref(p), p.task_id, p.enabled),
    }),
  }),
  modify_cron_for_periodic_task: api({
    method: 'POST',
    params: ModifyCronForPeriodicTaskParamsSchema,
    run: async (d, c, p) => ({ data: await schedules.modifyPeriodicCron(d, c, ref(p), p.task_id, p.cron) }),
  }),
  modify_constants_for_periodic_task: api({
    method: 'POST',
    params: ModifyConstantsForPeriodicTaskParamsSchema,
    run: async (d, c, p) => ({
      data: await schedules.modifyPeriodicConstants(d, c, ref(p), p.task_id, p.constants),
    }),
  }),
  create_clocked_task: api({
    method: 'POST',
    params: CreateClockedTaskParamsSchema,
    run: async (d, c, p) => ({ data: await schedules.createClockedTask(d, c, ref(p), p) }),
  }),
  get_clocked_task_list: api({
    method: 'GET',
    params: GetClockedTaskListParamsSchema,
    run: async (d, c, p) => {
      const { list, count } = await schedules.listClockedTasks(d, c, ref(p), p)
      return { data: list, extra: { count } }
    },
  }),
}

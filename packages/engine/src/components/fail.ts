import { z } from 'zod'
import { defineComponent } from './define'

export const fail = defineComponent({
  code: 'fail',
  name: 'Fail',
  version: '1.0',
  inputs: z.object({ message: z.string().default('failed on purpose') }),
  outputs: z.object({}),
  async execute({ message }) {
    return { status: 'failed', error: message }
  },
})

import { z } from 'zod'
import { defineComponent } from './define'

export const setVariables = defineComponent({
  code: 'set_variables',
  name: 'Set variables',
  version: '1.0',
  inputs: z.object({ variables: z.record(z.string(), z.unknown()) }),
  outputs: z.record(z.string(), z.unknown()),
  // Outputs its input, to feed `component_outputs` constants and gateway conditions.
  async execute({ variables }) {
    return { status: 'finished', outputs: variables }
  },
})

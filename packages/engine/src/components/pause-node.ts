import { z } from 'zod'
import { defineComponent } from './define'

export const pauseNode = defineComponent({
  code: 'pause_node',
  name: 'Pause (approval point)',
  version: '1.0',
  inputs: z.object({ description: z.string().optional() }),
  outputs: z.object({ data: z.unknown() }),
  // Waits for a node callback (operate_node `callback` or `resume`); no worker is held.
  async execute() {
    return { status: 'callback' }
  },
  async schedule(_inputs, ctx) {
    return { status: 'finished', outputs: { data: ctx.callbackData ?? {} } }
  },
})

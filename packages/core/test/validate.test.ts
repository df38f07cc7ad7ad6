import { describe, expect, it } from 'vitest'
import { type PipelineTreeInput, validatePipelineTree } from '../src/index'
import {
  createTreeBuilder,
  exclusiveLoopTree,
  exclusiveTree,
  linearTree,
  parallelTree,
} from '../src/testing/trees'

const COMPONENTS = new Set(['sleep_timer', 'set_variables', 'pause_node', 'bk_http_request', 'fail'])
const validate = (tree: unknown) =>
  validatePipelineTree(tree, { hasComponent: (code) => COMPONENTS.has(code) })

function expectValid(tree: unknown) {
  const result = validate(tree)
  if (!result.ok) throw new Error(`expected a valid tree, got: ${result.message}`)
  return result
}

const expectInvalid = (tree: unknown, message: string) =>
  expect(validate(tree)).toEqual({ ok: false, message })

/** start → a → end */
function simple() {
  const b = createTreeBuilder()
  const a = b.activity('sleep_timer', { data: { bk_timing: { hook: false, value: '1' } } })
  const [toA, toEnd] = b.chain(b.startId, a, b.endId) as [string, string]
  return { b, a, toA, toEnd }
}

/** start → fork → (a, c) → join → end */
function forked() {
  const b = createTreeBuilder()
  const fork = b.gateway('ParallelGateway')
  const join = b.gateway('ConvergeGateway')
  const a = b.activity('sleep_timer')
  const c = b.activity('sleep_timer')
  b.flow(b.startId, fork)
  const [toA, aToJoin] = b.chain(fork, a, join) as [string, string]
  b.chain(fork, c, join)
  b.flow(join, b.endId)
  return { b, fork, join, a, c, toA, aToJoin }
}

const activity = (tree: PipelineTreeInput, id: string) => tree.activities![id]!
const gateway = (tree: PipelineTreeInput, id: string) => tree.gateways![id]!

describe('validation accepts', () => {
  it('the sample trees', () => {
    expectValid(linearTree(3, 'sleep_timer'))
    expectValid(parallelTree(4, 'set_variables'))
    expectValid(exclusiveTree('set_variables'))
    expectValid(exclusiveLoopTree('set_variables'))
  })

  it('nested parallel forks, matching each with its own converge', () => {
    const b = createTreeBuilder()
    const outer = b.gateway('ParallelGateway')
    const inner = b.gateway('ParallelGateway')
    const innerJoin = b.gateway('ConvergeGateway')
    const outerJoin = b.gateway('ConvergeGateway')
    b.flow(b.startId, outer)
    b.chain(outer, b.activity('sleep_timer'), inner)
    b.chain(inner, b.activity('sleep_timer'), innerJoin)
    b.chain(inner, b.activity('sleep_timer'), innerJoin)
    b.chain(innerJoin, b.activity('sleep_timer'), outerJoin)
    b.chain(outer, b.activity('sleep_timer'), outerJoin)
    b.flow(outer, outerJoin) // an empty branch
    b.flow(outerJoin, b.endId)
    const { graph } = expectValid(b.build())
    expect(graph.nodes.get(outer)?.convergeId).toBe(outerJoin)
    expect(graph.nodes.get(inner)?.convergeId).toBe(innerJoin)
  })

  it('an exclusive gateway that loops back to an earlier activity', () => {
    const b = createTreeBuilder()
    b.constant('again', 'no')
    const a = b.activity('set_variables')
    const check = b.gateway('ExclusiveGateway')
    b.chain(b.startId, a, check)
    b.flow(check, a, { condition: '${again} == "yes"' })
    b.flow(check, b.endId, { condition: '${again} != "yes"' })
    expectValid(b.build())
  })

  it('a loop back to a converge gateway, which then joins no fork', () => {
    const b = createTreeBuilder()
    b.constant('n', 1)
    const join = b.gateway('ConvergeGateway')
    const check = b.gateway('ExclusiveGateway')
    b.chain(b.startId, join, b.activity('set_variables'), check)
    b.flow(check, join, { condition: '${n} < 3' })
    b.flow(check, b.endId, { isDefault: true })
    expectValid(b.build())
  })

  it('a conditional parallel gateway with a default flow', () => {
    const b = createTreeBuilder()
    b.constant('targets', ['a', 'b'])
    const fork = b.gateway('ConditionalParallelGateway')
    const join = b.gateway('ConvergeGateway')
    b.flow(b.startId, fork)
    for (const opts of [
      { condition: '"a" in ${targets}' },
      { condition: '"b" in ${targets}' },
      { isDefault: true },
    ]) {
      const branch = b.activity('sleep_timer')
      b.flow(fork, branch, opts)
      b.flow(branch, join)
    }
    b.flow(join, b.endId)
    const { graph } = expectValid(b.build())
    expect(graph.nodes.get(fork)?.convergeId).toBe(join)
  })

  it('an exclusive block with its own converge inside a parallel branch', () => {
    const b = createTreeBuilder()
    b.constant('x', 1)
    const fork = b.gateway('ParallelGateway')
    const choice = b.gateway('ExclusiveGateway')
    const choiceJoin = b.gateway('ConvergeGateway')
    const join = b.gateway('ConvergeGateway')
    const [yes, no] = [b.activity('sleep_timer'), b.activity('sleep_timer')]
    b.chain(b.startId, fork, choice)
    b.flow(choice, yes, { condition: '${x} == 1' })
    b.flow(choice, no, { isDefault: true })
    b.flow(yes, choiceJoin)
    b.flow(no, choiceJoin)
    b.chain(choiceJoin, b.activity('sleep_timer'), join)
    b.chain(fork, b.activity('sleep_timer'), join)
    b.flow(join, b.endId)
    const { graph } = expectValid(b.build())
    expect(graph.nodes.get(fork)?.convergeId).toBe(join)
  })

  it("an exclusive gateway in a parallel branch whose branches end at the fork's converge", () => {
    const b = createTreeBuilder()
    b.constant('x', 1)
    const fork = b.gateway('ParallelGateway')
    const choice = b.gateway('ExclusiveGateway')
    const join = b.gateway('ConvergeGateway')
    const other = b.activity('sleep_timer')
    b.chain(b.startId, fork, choice)
    b.flow(choice, join, { condition: '${x} == 1' })
    b.flow(choice, other, { isDefault: true })
    b.flow(other, join)
    b.chain(fork, b.activity('sleep_timer'), join)
    b.flow(join, b.endId)
    const { graph } = expectValid(b.build())
    expect(graph.nodes.get(fork)?.convergeId).toBe(join)
  })

  it('a loop inside a parallel branch', () => {
    const b = createTreeBuilder()
    b.constant('again', 'no')
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    const body = b.activity('set_variables')
    const check = b.gateway('ExclusiveGateway')
    b.chain(b.startId, fork, body, check)
    b.flow(check, body, { condition: '${again} == "yes"' })
    b.flow(check, join, { isDefault: true })
    b.chain(fork, b.activity('sleep_timer'), join)
    b.flow(join, b.endId)
    const { graph } = expectValid(b.build())
    expect(graph.nodes.get(fork)?.convergeId).toBe(join)
  })

  it('a loop around a whole parallel block', () => {
    const b = createTreeBuilder()
    b.constant('again', 'no')
    const first = b.activity('set_variables')
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    const check = b.gateway('ExclusiveGateway')
    b.chain(b.startId, first, fork)
    b.chain(fork, b.activity('sleep_timer'), join)
    b.chain(fork, b.activity('sleep_timer'), join)
    b.chain(join, check)
    b.flow(check, first, { condition: '${again} == "yes"' })
    b.flow(check, b.endId, { isDefault: true })
    expectValid(b.build())
  })

  it('a dotted reference to a defined constant', () => {
    const b = createTreeBuilder()
    b.constant('resp', { code: 200 })
    const a = b.activity('set_variables', {
      data: { variables: { hook: false, value: { code: '${resp.code}' } } },
    })
    b.chain(b.startId, a, b.endId)
    expectValid(b.build())
  })

  it('a converge_gateway_id that names the matching converge', () => {
    const { b, fork, join } = forked()
    const tree = b.build()
    gateway(tree, fork).converge_gateway_id = join
    expectValid(tree)
  })
})

describe('validation refuses a tree that', () => {
  it('is not an object, or misses a required part', () => {
    expect(validate('nope')).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^invalid pipeline tree: /),
    })
    const { b } = simple()
    const { start_event: _, ...noStart } = b.build()
    expect(validate(noStart)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^invalid pipeline tree start_event: /),
    })
  })

  it('has an activity of a type other than ServiceActivity or SubProcess', () => {
    const { b, a } = simple()
    const tree = b.build()
    Object.assign(activity(tree, a), { type: 'LoopActivity' })
    expect(validate(tree)).toMatchObject({
      ok: false,
      message: expect.stringMatching(new RegExp(`^invalid pipeline tree activities\\.${a}\\.type: `)),
    })
  })

  it('has a SubProcess without a template_id', () => {
    const { b, a } = simple()
    const tree = b.build()
    Object.assign(activity(tree, a), { type: 'SubProcess', component: undefined })
    expect(validate(tree)).toMatchObject({
      ok: false,
      message: expect.stringMatching(new RegExp(`^invalid pipeline tree activities\\.${a}\\.template_id: `)),
    })
  })

  it('has an activity with two outgoing flows, or none', () => {
    const { b, a, toEnd } = simple()
    const tree = b.build()
    activity(tree, a).outgoing = [toEnd, 'lother']
    expectInvalid(tree, `activity ${a} must have exactly 1 outgoing flow`)
    activity(tree, a).outgoing = ''
    expectInvalid(tree, `activity ${a} must have exactly 1 outgoing flow`)
  })

  it('has a start event without an outgoing flow', () => {
    const { b } = simple()
    const tree = b.build()
    tree.start_event.outgoing = ''
    expectInvalid(tree, `start event ${b.startId} must have exactly 1 outgoing flow`)
  })

  it('keys a node or flow under another id', () => {
    const { b, a, toA } = simple()
    const tree = b.build()
    tree.activities = { other: activity(tree, a) }
    expectInvalid(tree, `activity key other does not match its id ${a}`)
    const flowTree = b.build()
    flowTree.flows = { ...flowTree.flows, wrong: flowTree.flows![toA]! }
    expectInvalid(flowTree, `flow key wrong does not match its id ${toA}`)
  })

  it('has a constant whose key is malformed or differs from its key field', () => {
    const { b } = simple()
    b.constant('x', 1)
    const tree = b.build()
    tree.constants = { x: { ...tree.constants!['${x}']!, key: 'x' } }
    expectInvalid(tree, 'constant key x must have the form ${name}')
    tree.constants = { '${x}': { ...tree.constants.x!, key: '${y}' } }
    expectInvalid(tree, 'constant key ${x} does not match its key field ${y}')
  })

  it('uses one id for two nodes', () => {
    const { b, a } = simple()
    const tree = b.build()
    tree.gateways = { [a]: { id: a, type: 'ConvergeGateway', incoming: [], outgoing: [] } }
    expectInvalid(tree, `node id ${a} is used by more than one node`)
  })

  it('has a flow whose source or target does not exist', () => {
    const { b, toA, toEnd } = simple()
    const tree = b.build()
    tree.flows![toA]!.source = 'nghost'
    expectInvalid(tree, `flow ${toA} has unknown source nghost`)
    const other = b.build()
    other.flows![toEnd]!.target = 'nghost'
    expectInvalid(other, `flow ${toEnd} has unknown target nghost`)
  })

  it("has a flow missing from its nodes' lists", () => {
    const { b, a, toEnd } = simple()
    const tree = b.build()
    tree.end_event.incoming = []
    expectInvalid(tree, `flow ${toEnd} is missing from the incoming flows of node ${b.endId}`)
    const other = b.build()
    other.flows = { ...other.flows, lextra: { id: 'lextra', source: a, target: b.endId } }
    expectInvalid(other, `flow lextra is missing from the outgoing flows of node ${a}`)
  })

  it('lists a flow that does not exist, twice, or that belongs to another node', () => {
    const { b, a, toA, toEnd } = simple()
    const unknown = b.build()
    activity(unknown, a).incoming = [toA, 'lghost']
    expectInvalid(unknown, `node ${a} lists unknown incoming flow lghost`)
    const twice = b.build()
    activity(twice, a).incoming = [toA, toA]
    expectInvalid(twice, `node ${a} lists incoming flow ${toA} twice`)
    const foreign = b.build()
    activity(foreign, a).incoming = [toA, toEnd]
    expectInvalid(foreign, `node ${a} lists incoming flow ${toEnd}, which belongs to node ${b.endId}`)
  })

  it('has a start event with an incoming flow', () => {
    const b = createTreeBuilder()
    b.constant('again', 'no')
    const a = b.activity('sleep_timer')
    const check = b.gateway('ExclusiveGateway')
    b.chain(b.startId, a, check)
    b.flow(check, b.startId, { condition: '${again} == "yes"' })
    b.flow(check, b.endId, { isDefault: true })
    expectInvalid(b.build(), `start event ${b.startId} must have no incoming flow`)
  })

  it('has an end event without incoming flows, or with an outgoing one', () => {
    const b = createTreeBuilder()
    const a = b.activity('sleep_timer')
    const check = b.gateway('ExclusiveGateway')
    b.chain(b.startId, a, check)
    b.flow(check, a, { isDefault: true })
    expectInvalid(b.build(), `end event ${b.endId} must have at least 1 incoming flow`)

    const { b: c, a: first } = simple()
    const second = c.activity('sleep_timer')
    c.chain(c.endId, second, first)
    expectInvalid(c.build(), `end event ${c.endId} must have no outgoing flow`)
  })

  it('has an activity without incoming flow', () => {
    const { b } = simple()
    const lonely = b.activity('sleep_timer')
    b.flow(lonely, b.endId)
    expectInvalid(b.build(), `activity ${lonely} must have at least 1 incoming flow`)
  })

  it('has a converge gateway with two outgoing flows', () => {
    const { b, join } = forked()
    b.flow(join, b.endId)
    expectInvalid(b.build(), `converge gateway ${join} must have exactly 1 outgoing flow`)
  })

  it('has a gateway without outgoing flows', () => {
    const b = createTreeBuilder()
    b.constant('x', 1)
    const choice = b.gateway('ExclusiveGateway')
    const fork = b.gateway('ParallelGateway')
    b.flow(b.startId, choice)
    b.flow(choice, b.endId, { condition: '${x} == 1' })
    b.flow(choice, fork, { isDefault: true })
    expectInvalid(b.build(), `parallel gateway ${fork} must have at least 1 outgoing flow`)
  })

  it('has a node that the start does not reach', () => {
    const { b } = simple()
    const x = b.activity('sleep_timer')
    const y = b.activity('sleep_timer')
    b.flow(x, y)
    b.flow(y, x)
    expectInvalid(b.build(), `node ${x} is not reachable from the start event`)
  })

  it('has a node that cannot reach the end', () => {
    const b = createTreeBuilder()
    b.constant('go', 'yes')
    const check = b.gateway('ExclusiveGateway')
    const x = b.activity('sleep_timer')
    const y = b.activity('sleep_timer')
    b.flow(b.startId, check)
    b.flow(check, b.endId, { condition: '${go} == "no"' })
    b.flow(check, x, { condition: '${go} == "yes"' })
    b.flow(x, y)
    b.flow(y, x)
    expectInvalid(b.build(), `node ${x} cannot reach the end event`)
  })

  it('has a parallel branch that reaches the end without converging', () => {
    const b = createTreeBuilder()
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    b.flow(b.startId, fork)
    b.chain(fork, b.activity('sleep_timer'), join, b.endId)
    const [straight] = b.chain(fork, b.activity('sleep_timer'), b.endId)
    expectInvalid(
      b.build(),
      `gateway ${fork}: branch through flow ${straight} reaches the end event without a converge gateway`,
    )
  })

  it('has parallel branches that meet different converge gateways', () => {
    const b = createTreeBuilder()
    const fork = b.gateway('ParallelGateway')
    const first = b.gateway('ConvergeGateway')
    const second = b.gateway('ConvergeGateway')
    b.flow(b.startId, fork)
    b.chain(fork, b.activity('sleep_timer'), first, second)
    b.chain(fork, b.activity('sleep_timer'), second, b.endId)
    expectInvalid(
      b.build(),
      `gateway ${fork}: branches meet different converge gateways (${first}, ${second})`,
    )
  })

  it('joins flows from outside a fork at its converge', () => {
    const b = createTreeBuilder()
    b.constant('x', 1)
    const choice = b.gateway('ExclusiveGateway')
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    const side = b.activity('sleep_timer')
    b.flow(b.startId, choice)
    b.flow(choice, fork, { condition: '${x} == 1' })
    b.flow(choice, side, { isDefault: true })
    b.chain(fork, b.activity('sleep_timer'), join)
    b.chain(fork, b.activity('sleep_timer'), join)
    const [stranger] = b.chain(side, join, b.endId)
    expectInvalid(
      b.build(),
      `converge gateway ${join} joins flow ${stranger}, which is not a branch of gateway ${fork}`,
    )
  })

  it('names a converge_gateway_id other than the one its branches meet', () => {
    const { b, fork, join } = forked()
    const tree = b.build()
    gateway(tree, fork).converge_gateway_id = 'nelsewhere'
    expectInvalid(tree, `gateway ${fork} names converge gateway nelsewhere, but its branches meet at ${join}`)
  })

  it('enters a parallel branch from outside the fork', () => {
    const b = createTreeBuilder()
    b.constant('x', 1)
    const choice = b.gateway('ExclusiveGateway')
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    const inside = b.activity('sleep_timer')
    const side = b.activity('sleep_timer')
    b.flow(b.startId, choice)
    b.flow(choice, fork, { condition: '${x} == 1' })
    b.flow(choice, side, { isDefault: true })
    b.chain(fork, inside, join)
    b.chain(fork, b.activity('sleep_timer'), join)
    b.flow(join, b.endId)
    const [sneak] = b.chain(side, inside)
    expectInvalid(b.build(), `node ${inside} inside gateway ${fork} is entered from outside by flow ${sneak}`)
  })

  it('loops from inside a parallel branch to before the fork', () => {
    const b = createTreeBuilder()
    b.constant('again', 'no')
    const before = b.activity('sleep_timer')
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    const check = b.gateway('ExclusiveGateway')
    b.chain(b.startId, before, fork)
    b.chain(fork, b.activity('sleep_timer'), check)
    const back = b.flow(check, before, { condition: '${again} == "yes"' })
    b.flow(check, join, { isDefault: true })
    b.chain(fork, b.activity('sleep_timer'), join)
    b.flow(join, b.endId)
    expectInvalid(b.build(), `flow ${back} loops from inside gateway ${fork} to outside it`)
  })

  it('has a parallel branch that only loops and never converges', () => {
    const b = createTreeBuilder()
    const before = b.activity('sleep_timer')
    const fork = b.gateway('ParallelGateway')
    const join = b.gateway('ConvergeGateway')
    b.chain(b.startId, before, fork)
    const [branch] = b.chain(fork, b.activity('sleep_timer'), before)
    b.chain(fork, b.activity('sleep_timer'), join, b.endId)
    expectInvalid(
      b.build(),
      `gateway ${fork}: branch through flow ${branch} never reaches a converge gateway`,
    )
  })

  it('has an exclusive gateway in a parallel branch whose branches meet different converges', () => {
    const b = createTreeBuilder()
    b.constant('x', 1)
    const fork = b.gateway('ParallelGateway')
    const choice = b.gateway('ExclusiveGateway')
    const choiceJoin = b.gateway('ConvergeGateway')
    const join = b.gateway('ConvergeGateway')
    const [yes, no] = [b.activity('sleep_timer'), b.activity('sleep_timer')]
    b.chain(b.startId, fork, choice)
    b.flow(choice, yes, { condition: '${x} == 1' })
    b.flow(choice, no, { isDefault: true })
    b.chain(yes, choiceJoin, join)
    b.flow(no, join)
    b.chain(fork, b.activity('sleep_timer'), join)
    b.flow(join, b.endId)
    expectInvalid(
      b.build(),
      `branches of exclusive gateway ${choice} meet different converge gateways (${choiceJoin}, ${join})`,
    )
  })

  it('puts a condition on a flow that does not leave the gateway', () => {
    const tree = exclusiveTree('set_variables')
    const [choice] = Object.keys(tree.gateways!) as [string]
    gateway(tree, choice).conditions!.lghost = { evaluate: 'True' }
    expectInvalid(
      tree,
      `exclusive gateway ${choice} has a condition for flow lghost, which is not one of its outgoing flows`,
    )
  })

  it('names a default flow that does not leave the gateway', () => {
    const tree = exclusiveTree('set_variables')
    const [choice] = Object.keys(tree.gateways!) as [string]
    gateway(tree, choice).default_condition = { flow_id: 'lghost' }
    expectInvalid(
      tree,
      `exclusive gateway ${choice} names default flow lghost, which is not one of its outgoing flows`,
    )
  })

  it('has two default flows on one gateway', () => {
    const tree = exclusiveTree('set_variables')
    const [choice] = Object.keys(tree.gateways!) as [string]
    const [first, , third] = gateway(tree, choice).outgoing as string[]
    tree.flows![first!]!.is_default = true
    expectInvalid(tree, `exclusive gateway ${choice} has more than one default flow (${first}, ${third})`)
  })

  it('leaves a non-default flow of a conditional gateway without a condition', () => {
    const tree = exclusiveTree('set_variables')
    const [choice] = Object.keys(tree.gateways!) as [string]
    const [, third] = gateway(tree, choice).outgoing as string[]
    delete gateway(tree, choice).conditions![third!]
    expectInvalid(tree, `exclusive gateway ${choice} has no condition for flow ${third}`)
  })

  it('has a condition that does not parse', () => {
    const tree = exclusiveTree('set_variables')
    const [choice] = Object.keys(tree.gateways!) as [string]
    const [first] = gateway(tree, choice).outgoing as string[]
    gateway(tree, choice).conditions![first!] = { evaluate: '${branch} = "a"' }
    expectInvalid(
      tree,
      `condition of flow ${first} on exclusive gateway ${choice} does not parse: unexpected character "=" at position 10`,
    )
  })

  it('uses a component that is not registered', () => {
    const tree = linearTree(1, 'job_execute')
    const [id] = Object.keys(tree.activities!)
    expectInvalid(tree, `activity ${id} uses unknown component job_execute`)
  })

  it('reads an undefined constant in an activity input', () => {
    const tree = linearTree(1, 'sleep_timer', { bk_timing: { hook: true, value: '${timing}' } })
    const [id] = Object.keys(tree.activities!)
    expectInvalid(tree, `input bk_timing of activity ${id} references undefined constant \${timing}`)
  })

  it('reads a system variable that is not defined as a constant', () => {
    const tree = linearTree(1, 'set_variables', {
      variables: { hook: false, value: { id: 'task ${_system.task_id}' } },
    })
    const [id] = Object.keys(tree.activities!)
    expectInvalid(tree, `input variables of activity ${id} references undefined constant \${_system.task_id}`)
  })

  it('reads an undefined constant in a condition', () => {
    const tree = exclusiveTree('set_variables')
    const [choice] = Object.keys(tree.gateways!) as [string]
    const [first] = gateway(tree, choice).outgoing as string[]
    gateway(tree, choice).conditions![first!] = { evaluate: '${branch} == "a" and mode == "x"' }
    expectInvalid(
      tree,
      `condition of flow ${first} on gateway ${choice} references undefined constant \${mode}`,
    )
  })

  it('reads an undefined constant in a constant value', () => {
    const b = createTreeBuilder()
    b.constant('url', 'http://${host}')
    b.chain(b.startId, b.activity('sleep_timer'), b.endId)
    expectInvalid(b.build(), 'constant ${url} references undefined constant ${host}')
  })

  it('takes a constant from an activity that does not exist', () => {
    const b = createTreeBuilder()
    b.constant('out', '', { source_type: 'component_outputs', source_info: { nghost: ['data'] } })
    b.chain(b.startId, b.activity('sleep_timer'), b.endId)
    expectInvalid(b.build(), 'constant ${out} takes its value from unknown activity nghost')
  })

  it('lists an output that is not a constant', () => {
    const b = createTreeBuilder()
    b.chain(b.startId, b.activity('sleep_timer'), b.endId)
    b.output('result')
    expectInvalid(b.build(), 'output ${result} is not a constant of the tree')
  })

  it('has constants that reference each other in a cycle', () => {
    const b = createTreeBuilder()
    b.constant('a', '${b}/x')
    b.constant('b', '${a}/y')
    b.chain(b.startId, b.activity('sleep_timer'), b.endId)
    expectInvalid(b.build(), 'constants ${a} -> ${b} -> ${a} form a reference cycle')
  })
})

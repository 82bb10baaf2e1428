/**
 * The flow builders' defaults: what the nodes of a built flow are set to is
 * the settings table's default (or blank, which means it), so the example
 * flows, the demo and the add-on's generated flows cannot drift from the
 * nodes' own defaults. (test/nodes/examples.test.ts deploys the examples;
 * test/addon/ deploys what the add-on generates from homeAssistantChain.)
 */
import { strict as assert } from 'assert';
import { DEFAULT_QUALITY_THRESHOLDS } from '../../nodes/core/align/quality';
import { NodeType, SETTINGS } from '../../nodes/core/flow/settings';
import { exampleFlows, FlowNode, HA_CHAIN_ROLES, homeAssistantChain } from '../../nodes/tools/flows';

/** Flow-level choices that differ from a node's own default on purpose. */
const FLOW_CHOICES: Record<string, string> = { 'align.minFaceSize': String(DEFAULT_QUALITY_THRESHOLDS.minBoxPx) };

function assertTableDefaults(nodes: FlowNode[]): number {
  let checked = 0;
  for (const node of nodes) {
    const fields = SETTINGS[node.type as NodeType] as Record<string, { default: number }> | undefined;
    if (!fields) continue;
    for (const [field, rule] of Object.entries(fields)) {
      if (!(field in node)) continue;
      const value = String(node[field]);
      const choice = FLOW_CHOICES[`${node.type}.${field}`];
      if (choice !== undefined) assert.equal(value, choice, `${node.id}.${field}`);
      else if (!(node.type === 'camera-in' && field === 'fps'))
        assert.ok(
          value === '' || Number(value) === rule.default,
          `${node.id}.${field} = ${value}, table ${rule.default}`,
        );
      checked++;
    }
  }
  return checked;
}

describe('tools/flows: builders take the settings table', () => {
  it("homeAssistantChain: one node per role, wired camera -> ... -> HA with the camera's status, table defaults", () => {
    const chain = homeAssistantChain({
      id: (role) => `x-${role}`,
      camera: { name: 'front_door', url: 'rtsp://192.0.2.1/s' },
      detector: 'full',
      device: 'dev',
      gallery: 'gal',
      broker: 'mqtt://h:1883',
    });
    assert.deepEqual(
      chain.map((n) => n.type),
      [...HA_CHAIN_ROLES],
    );
    assert.deepEqual(
      chain.map((n) => n.id),
      HA_CHAIN_ROLES.map((r) => `x-${r}`),
    );
    const [camera, align, embed, classify, ha] = chain;
    assert.deepEqual(camera.wires, [['x-align'], ['x-ha-face-entities']]);
    assert.deepEqual(align.wires, [['x-edgetpu-embed']]);
    assert.deepEqual(embed.wires, [['x-imprint-classify']]);
    assert.deepEqual(classify.wires, [['x-ha-face-entities'], []]);
    assert.deepEqual(
      { camera: ha.camera, gallery: ha.gallery, broker: ha.broker },
      { camera: 'front_door', gallery: 'gal', broker: 'mqtt://h:1883' },
    );
    assert.equal(String(camera.fps), String(SETTINGS['camera-in'].fps.default));
    assert.ok(assertTableDefaults(chain) >= 10, "the chain sets the table's fields");
  });

  it('the example flows use the table defaults too', () => {
    for (const [name, flow] of Object.entries(exampleFlows())) assert.ok(assertTableDefaults(flow) > 0, name);
  });
});

/**
 * The eval protocol on a small synthetic dataset: empty photo files named as
 * the layout wants, and a describer that maps each file to a chosen vector, so
 * every figure can be worked out by hand.
 */
import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { evaluateShots, readDataset, thresholdForFalseAccepts } from '../../nodes/tools/evaluate';

const unit = (v: number[]) => {
  const n = Math.hypot(...v);
  return Float32Array.from(v, (x) => x / n);
};

describe('eval protocol', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-eval-'));
  const vectors = new Map<string, Float32Array | null>();
  const axes: Record<string, number> = { Alice: 0, Bob: 1, Carol: 2 };
  before(() => {
    for (const [name, axis] of Object.entries(axes)) {
      fs.mkdirSync(path.join(dir, name));
      for (let i = 0; i < 6; i++) {
        const file = path.join(dir, name, `${name}_${i}.jpg`);
        fs.writeFileSync(file, '');
        // Each photo a little off the person's axis, towards the spare 4th axis.
        const v = [0, 0, 0, 0.1 * i];
        v[axis] = 1;
        vectors.set(file, unit(v));
      }
    }
    // Carol's last photo: no face found.
    vectors.set(path.join(dir, 'Carol', 'Carol_5.jpg'), null);
    fs.mkdirSync(path.join(dir, '_unknown'));
    fs.mkdirSync(path.join(dir, '_group'));
    fs.writeFileSync(path.join(dir, '_group', 'ignored.jpg'), '');
    const strangers = {
      between: unit([0.6, 0.58, 0, 0.55]), // close to Alice and Bob alike: ambiguous
      nearAlice: unit([0.7, 0, 0, 0.71]), // clearly Alice-like
      far: unit([0, 0, 0, 1]),
    };
    for (const [name, v] of Object.entries(strangers)) {
      const file = path.join(dir, '_unknown', `${name}.jpg`);
      fs.writeFileSync(file, '');
      vectors.set(file, v);
    }
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('enrols the first N photos by name and probes the rest', () => {
    const one = readDataset(dir, 1);
    assert.deepEqual(
      one.identities.map((i) => i.name),
      ['Alice', 'Bob', 'Carol'],
    );
    assert.deepEqual(
      one.identities[0].enrol.map((f) => path.basename(f)),
      ['Alice_0.jpg'],
    );
    assert.equal(one.identities[0].probes.length, 5);
    assert.equal(one.impostors.length, 3);
    assert.equal(readDataset(dir).identities[0].probes.length, 1);
  });

  it('runs once per shot count, describing each photo once per role', async () => {
    const calls: string[] = [];
    const results = await evaluateShots(
      dir,
      async (file, role) => {
        calls.push(`${role}:${path.basename(file)}`);
        return vectors.get(file) ?? null;
      },
      [1, 5],
      { threshold: 0.5, margin: 0.05 },
    );
    assert.equal(new Set(calls).size, calls.length, 'no photo described twice in one role');
    // Photos 1-4 enrol at 5 shots and probe at 1 shot; photo 0 only enrols, photo 5 only probes; strangers probe.
    assert.equal(calls.length, 3 * (1 + 4 * 2 + 1) + 3);
    assert.ok(calls.includes('enrol:Alice_0.jpg') && !calls.includes('probe:Alice_0.jpg'));

    const [one, five] = results;
    assert.equal(one.shots, 1);
    assert.equal(one.probes, 15);
    assert.equal(five.shots, 5);
    assert.equal(five.probes, 3);
    assert.equal(five.impostors, 3);
    // Carol_5 has no face: a wrong probe, in both runs.
    assert.equal(one.detectFailures, 1);
    assert.equal(one.top1, 14 / 15);
    assert.equal(five.top1, 2 / 3);
    // The head's rule: nearAlice is let in; "between" is ambiguous (margin) and "far" is below the threshold.
    assert.deepEqual(five.atDefault, { threshold: 0.5, margin: 0.05, tpir: 2 / 3, fpir: 1 / 3 });
    const curveAt = (r: typeof five, t: number) => r.curve.find((p) => p.threshold === t)!;
    assert.equal(curveAt(five, 0.8).fpir, 1 / 3); // nearAlice scores about 0.83
    assert.equal(curveAt(five, 0.6).tpir, 2 / 3);
    assert.equal(curveAt(five, 0.5).fpir, 1 / 3);
  });

  it('without the margin the ambiguous stranger is let in too', async () => {
    const [five] = await evaluateShots(dir, async (file) => vectors.get(file) ?? null, [5], {
      threshold: 0.5,
      margin: 0,
    });
    assert.equal(five.atDefault.fpir, 2 / 3);
    // At FPIR 1/60 of 3 impostors (rounds to 0 let in): the threshold is above every impostor.
    assert.ok(five.thresholds['1/60'] > 0.7);
  });

  it('places the threshold so that exactly k impostors score above it', () => {
    const scores = [0.1, 0.5, 0.3, 0.45];
    for (const k of [0, 1, 2, 4]) {
      const t = thresholdForFalseAccepts(scores, k);
      assert.equal(scores.filter((s) => s > t).length, k);
    }
  });
});

/**
 * The verification protocol on LFW's pairs format (nodes/tools/eval-pairs.ts),
 * on scores whose right answer is known.
 */
import { strict as assert } from 'assert';
import * as path from 'path';
import {
  bestThreshold,
  imagePath,
  PairList,
  PairsFormatError,
  parsePairs,
  verificationResult,
} from '../../nodes/tools/eval-pairs';

describe('eval-pairs protocol', () => {
  it('parses LFW pairs.txt: folds from the header, image paths with 4-digit numbers', () => {
    const text = '2\t1\nAlice\t1\t3\nAlice\t2\tBob\t12\nCarol\t4\t5\nDan\t1\tEve\t1\n';
    const list = parsePairs(text, '/img');
    assert.deepEqual([list.folds, list.pairsPerFold, list.pairs.length], [2, 2, 4]);
    assert.deepEqual(list.pairs[0], {
      fold: 0,
      same: true,
      a: path.join('/img', 'Alice', 'Alice_0001.jpg'),
      b: path.join('/img', 'Alice', 'Alice_0003.jpg'),
    });
    assert.deepEqual(list.pairs[1], {
      fold: 0,
      same: false,
      a: imagePath('/img', 'Alice', 2),
      b: imagePath('/img', 'Bob', 12),
    });
    assert.deepEqual(
      list.pairs.map((p) => [p.fold, p.same]),
      [
        [0, true],
        [0, false],
        [1, true],
        [1, false],
      ],
    );
    // LFW's View 1 files have a single count: one fold.
    assert.equal(parsePairs('1\nAlice\t1\t3\nAlice\t2\tBob\t12\n', '/img').folds, 1);
  });

  it('refuses malformed files with the line at fault', () => {
    assert.throws(
      () => parsePairs('ten 300\n', '/img'),
      (e: Error) => e instanceof PairsFormatError && /first line/.test(e.message),
    );
    assert.throws(
      () => parsePairs('1 1\nAlice 1 3\n', '/img'),
      /promises 1 folds of 1 \+ 1 pairs \(2 lines\), the file has 1/,
    );
    assert.throws(() => parsePairs('1 1\nAlice 1\nBob 1 Eve 2\n', '/img'), /line 2: a same-person line has 3 fields/);
    assert.throws(() => parsePairs('1 1\nAlice 1 x\nBob 1 Eve 2\n', '/img'), /line 2: "x" is not an image number/);
  });

  // Two folds of 3 + 3 pairs; scores chosen so that the best threshold is known.
  const list: PairList = {
    folds: 2,
    pairsPerFold: 6,
    pairs: [0, 1].flatMap((fold) =>
      [true, true, true, false, false, false].map((same, i) => ({ fold, same, a: `${fold}a${i}`, b: `${fold}b${i}` })),
    ),
  };

  it("picks each fold's threshold on the other folds and measures the held-out one", () => {
    // Fold 0 separates at 0.5; fold 1 has one same pair at 0.3 (below any threshold fold 0 suggests).
    const scores = [0.8, 0.7, 0.6, 0.2, 0.1, 0.4, 0.9, 0.8, 0.3, 0.2, 0.1, 0.0];
    const result = verificationResult(list, scores, 0, 24);
    assert.ok(
      result.thresholds[1] > 0.4 && result.thresholds[1] < 0.6,
      `fold 1's threshold comes from fold 0: ${result.thresholds[1]}`,
    );
    assert.equal(result.foldAccuracies[1], 5 / 6, 'the 0.3 same pair is missed');
    assert.ok(
      result.thresholds[0] > 0.2 && result.thresholds[0] < 0.3,
      `fold 0's threshold comes from fold 1: ${result.thresholds[0]}`,
    );
    assert.equal(result.foldAccuracies[0], 5 / 6, 'at ~0.25 fold 0 lets its 0.4 different pair in');
    assert.equal(result.accuracy, 5 / 6);
    assert.equal(result.std, 0);
    assert.equal(
      bestThreshold(
        list.pairs.map((p, i) => ({ fold: p.fold, same: p.same, score: scores[i] })).filter((p) => p.fold === 0),
      ),
      0.5,
    );
  });

  it('counts a pair without a face as wrong, and reads TAR at the FAR thresholds of the different pairs', () => {
    const perfect = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1, 0.9, 0.8, 0.7, 0.3, 0.2, 0.1];
    assert.equal(verificationResult(list, perfect, 0, 24).accuracy, 1);
    const missing = [...perfect];
    missing[0] = null as unknown as number;
    missing[3] = null as unknown as number;
    const result = verificationResult(list, missing, 2, 24);
    assert.equal(result.foldAccuracies[0], 4 / 6, 'a same pair and a different pair without a face: both wrong');
    assert.equal(result.noFace, 2);
    // 6 different pairs: FAR 1e-2 and 1e-3 both allow 0 false accepts, so the threshold sits above the top impostor (0.3).
    assert.ok(result.farThresholds['1e-2'] > 0.3 && result.farThresholds['1e-2'] < 0.31);
    assert.equal(result.tarAtFar['1e-2'], 5 / 6, 'the same pair without a face is not accepted');
    assert.equal(result.differentPairs, 6);
  });
});

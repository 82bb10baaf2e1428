/**
 * Online clustering of strangers on real embeddings of dev photos: one cluster per person (pure),
 * each visit placed the moment it arrives, removals undo what they added.
 */
import { strict as assert } from 'assert';
import { UnknownClusters } from '../../../nodes/core/library/clusters';
import { disposeSharedPipeline, Face, facesOf, identities } from './faces';

describe('library: unknown clusters', function () {
  this.timeout(300000);
  const faces: Face[] = [];
  before(async () => {
    // 8 people x up to 6 photos, interleaved as a camera would see repeat visitors.
    const people = identities().slice(10, 18);
    const perPerson = await Promise.all(people.map((p) => facesOf(p, 6)));
    for (let round = 0; round < 6; round++) for (const list of perPerson) if (list[round]) faces.push(list[round]);
  });
  after(() => disposeSharedPipeline());

  it('groups repeat strangers by person: pure clusters, about one per person', () => {
    const clusters = new UnknownClusters();
    faces.forEach((face, i) => clusters.add(`v${i}`, face.embedding, i));
    const list = clusters.list();
    let impure = 0;
    for (const cluster of list) {
      const who = cluster.members.map((m) => faces[Number(m.slice(1))].identity);
      const majority = Math.max(...[...new Set(who)].map((p) => who.filter((w) => w === p).length));
      impure += who.length - majority;
    }
    const people = new Set(faces.map((f) => f.identity)).size;
    assert.ok(
      impure <= Math.ceil(faces.length * 0.03),
      `at most 3 % of visits in another person's cluster (${impure} of ${faces.length})`,
    );
    assert.ok(list.length >= people && list.length <= people * 2, `${list.length} clusters for ${people} people`);
    // Most of each person's visits sit together.
    for (const person of new Set(faces.map((f) => f.identity))) {
      const theirs = faces
        .map((f, i) => (f.identity === person ? clusters.clusterIdOf(`v${i}`) : null))
        .filter((c) => c !== null);
      const biggest = Math.max(...[...new Set(theirs)].map((c) => theirs.filter((t) => t === c).length));
      assert.ok(biggest / theirs.length >= 0.6, `${person}: ${biggest} of ${theirs.length} visits in one cluster`);
    }
  });

  it('places a new visit at once, and removing members undoes them', () => {
    const clusters = new UnknownClusters();
    const a = faces.filter((f) => f.identity === faces[0].identity);
    const first = clusters.add('a0', a[0].embedding, 1);
    assert.equal(first, 'a0');
    assert.equal(clusters.add('a1', a[1].embedding, 2), 'a0', 'the second visit of the same person joins at once');
    const other = faces.find((f) => f.identity !== a[0].identity)!;
    assert.notEqual(clusters.add('b0', other.embedding, 3), 'a0');
    clusters.remove('a0');
    assert.equal(clusters.clusterIdOf('a1'), 'a1', 'the oldest remaining member names the cluster');
    clusters.remove('a1');
    clusters.remove('b0');
    assert.equal(clusters.size, 0);
    assert.throws(() => new UnknownClusters(2), /joinCosine/);
  });
});

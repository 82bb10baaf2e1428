/**
 * Unknown people, grouped: online clustering of strangers' embeddings, so that a new unknown visit
 * joins its cluster the moment it is stored.
 *
 * Leader-follower clustering on unit vectors, with the weight-imprinting trick the head uses: a
 * cluster is the running sum of its members' normalised embeddings, its centroid that sum
 * normalised. A visit joins the cluster whose centroid is closest if that cosine reaches
 * `joinCosine`, otherwise it starts a cluster. A cluster that grew is compared with the others and
 * merged into one whose centroid has come within `joinCosine` (two clusters of one person, started
 * by poor first visits, meet as evidence accumulates). Removing a member subtracts it: O(d).
 *
 * Cost per unknown visit: one cosine per cluster to join, one more per cluster for the merge check,
 * i.e. O(K·d) for K clusters of d-dimensional embeddings.
 *
 * `joinCosine` sits above the head's default threshold region on purpose (same person's cosines to a
 * centroid are 0.5–0.85, different people's below 0.35 on the dev set): a cluster the user names
 * is enrolled as one person, so a split is cheap (two clusters to name) and a merge of two people
 * is not.
 */
import { l2normalize } from '../identify/imprint';

export const DEFAULT_JOIN_COSINE = 0.5;

export interface Cluster {
  /** The id of the cluster's first member: stable while that member is kept. */
  id: string;
  members: string[];
  firstSeen: number;
  lastSeen: number;
  centroid: Float32Array;
}

interface State {
  id: string;
  sum: Float64Array;
  members: Map<string, { unit: Float32Array; time: number }>;
  centroid: Float32Array | null;
}

export class UnknownClusters {
  private readonly clusters = new Map<string, State>();
  private readonly clusterOf = new Map<string, State>();
  private dimension: number | null = null;

  constructor(readonly joinCosine = DEFAULT_JOIN_COSINE) {
    if (!(joinCosine > -1 && joinCosine < 1))
      throw new RangeError(`joinCosine must be between -1 and 1 (got ${joinCosine})`);
  }

  get size(): number {
    return this.clusters.size;
  }

  /** Adds a visit; returns the id of the cluster it is in now (after any merge). */
  add(memberId: string, embedding: ArrayLike<number>, time: number): string {
    if (this.clusterOf.has(memberId)) return this.clusterOf.get(memberId)!.id;
    if (this.dimension !== null && embedding.length !== this.dimension) {
      throw new RangeError(`embedding has ${embedding.length} values, the clusters hold ${this.dimension}`);
    }
    this.dimension = embedding.length;
    const unit = l2normalize(embedding);
    let best: State | null = null;
    let bestCosine = -Infinity;
    for (const cluster of this.clusters.values()) {
      const cosine = dot(unit, this.centroidOf(cluster));
      if (cosine > bestCosine) {
        best = cluster;
        bestCosine = cosine;
      }
    }
    let target: State;
    if (best && bestCosine >= this.joinCosine) {
      target = best;
    } else {
      target = { id: memberId, sum: new Float64Array(unit.length), members: new Map(), centroid: null };
      this.clusters.set(memberId, target);
    }
    for (let i = 0; i < unit.length; i++) target.sum[i] += unit[i];
    target.members.set(memberId, { unit, time });
    target.centroid = null;
    this.clusterOf.set(memberId, target);
    return this.mergeNearby(target).id;
  }

  remove(memberId: string): void {
    const cluster = this.clusterOf.get(memberId);
    if (!cluster) return;
    const member = cluster.members.get(memberId)!;
    cluster.members.delete(memberId);
    this.clusterOf.delete(memberId);
    if (cluster.members.size === 0) {
      this.clusters.delete(cluster.id);
      if (this.clusters.size === 0) this.dimension = null;
      return;
    }
    for (let i = 0; i < member.unit.length; i++) cluster.sum[i] -= member.unit[i];
    cluster.centroid = null;
    if (cluster.id === memberId) {
      // The founding member went: the oldest remaining one names the cluster.
      const oldest = [...cluster.members].sort((a, b) => a[1].time - b[1].time || (a[0] < b[0] ? -1 : 1))[0][0];
      this.clusters.delete(cluster.id);
      cluster.id = oldest;
      this.clusters.set(oldest, cluster);
    }
  }

  clusterIdOf(memberId: string): string | undefined {
    return this.clusterOf.get(memberId)?.id;
  }

  get(clusterId: string): Cluster | undefined {
    const state = this.clusters.get(clusterId);
    return state ? this.describe(state) : undefined;
  }

  /** Every cluster, most recently seen first. */
  list(): Cluster[] {
    return [...this.clusters.values()].map((state) => this.describe(state)).sort((a, b) => b.lastSeen - a.lastSeen);
  }

  private describe(state: State): Cluster {
    const members = [...state.members].sort((a, b) => b[1].time - a[1].time);
    return {
      id: state.id,
      members: members.map(([id]) => id),
      firstSeen: members[members.length - 1][1].time,
      lastSeen: members[0][1].time,
      centroid: Float32Array.from(this.centroidOf(state)),
    };
  }

  private centroidOf(state: State): Float32Array {
    state.centroid ??= l2normalize(state.sum);
    return state.centroid;
  }

  /** Merges clusters that came within joinCosine of `grown`, repeatedly; returns the survivor. */
  private mergeNearby(grown: State): State {
    let survivor = grown;
    for (;;) {
      const centroid = this.centroidOf(survivor);
      let other: State | null = null;
      for (const cluster of this.clusters.values()) {
        if (cluster !== survivor && dot(centroid, this.centroidOf(cluster)) >= this.joinCosine) {
          other = cluster;
          break;
        }
      }
      if (!other) return survivor;
      // The older cluster keeps its id: it is the one the user may already be looking at.
      const [keep, gone] = firstTime(other) <= firstTime(survivor) ? [other, survivor] : [survivor, other];
      for (let i = 0; i < keep.sum.length; i++) keep.sum[i] += gone.sum[i];
      for (const [id, member] of gone.members) {
        keep.members.set(id, member);
        this.clusterOf.set(id, keep);
      }
      keep.centroid = null;
      this.clusters.delete(gone.id);
      survivor = keep;
    }
  }
}

function firstTime(state: State): number {
  let first = Infinity;
  for (const member of state.members.values()) first = Math.min(first, member.time);
  return first;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

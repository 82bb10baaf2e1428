// The part of node-gyp-build (no types of its own) that native/addon.ts uses.
declare module 'node-gyp-build' {
  interface NodeGypBuild {
    (dir: string): unknown;
    /** The .node file that would load: <dir>/build/Release first, then <dir>/prebuilds/<platform>-<arch>/. Throws when none fits. */
    path(dir: string): string;
  }
  const nodeGypBuild: NodeGypBuild;
  export = nodeGypBuild;
}

import * as os from 'os';
import * as path from 'path';
import { packageRoot } from '../../../native/addon';
import { type Args, numberFlag } from './args';

/**
 * The demo: Node-RED in its own user dir with this package and the demo flow,
 * on a clip made now from the photos @vladmandic/face-api ships in demo/ (so
 * no camera, no Coral, nothing downloaded).
 */
export async function demo(args: Args): Promise<number> {
  const dir = path.resolve(typeof args.flags.get('dir') === 'string' ? String(args.flags.get('dir')) : path.join(os.homedir(), '.coral-face', 'demo'));
  const port = numberFlag(args, 'port') ?? 1880;
  const fs = await import('fs');
  const { spawn } = await import('child_process');
  const { makeDemoClip } = await import('../../core/camera/demo-clip');
  const { demoFlow } = await import('../flows');
  const { demoClipSegments } = await import('../demo-clip');
  const root = packageRoot;
  fs.mkdirSync(path.join(dir, 'node_modules'), { recursive: true });
  const clip = path.join(dir, 'demo.mp4');
  if (!fs.existsSync(clip)) {
    const segments = demoClipSegments();
    process.stdout.write(`making the demo clip from ${segments.length} photos...\n`);
    // Written aside and renamed, so an interrupted start never leaves half a clip behind.
    const partial = path.join(dir, 'demo.partial.mp4');
    await makeDemoClip(segments, partial, { width: 1280, height: 720, fps: 10 });
    fs.renameSync(partial, clip);
  }
  // Node-RED finds the package through its user dir's node_modules.
  const link = path.join(dir, 'node_modules', 'node-red-contrib-coral-face');
  if (!fs.existsSync(link)) fs.symlinkSync(root, link, 'dir');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'coral-face-demo', private: true,
    dependencies: { 'node-red-contrib-coral-face': `file:${root}` } }, null, 2));
  const flowFile = path.join(dir, 'flows.json');
  if (!fs.existsSync(flowFile)) fs.writeFileSync(flowFile, JSON.stringify(demoFlow(clip, path.join(dir, 'gallery')), null, 2));
  fs.writeFileSync(path.join(dir, 'settings.js'), `module.exports = ${JSON.stringify({
    uiPort: port, uiHost: '127.0.0.1', flowFile: 'flows.json', credentialSecret: false,
    editorTheme: { tours: false, projects: { enabled: false } },
  }, null, 2)};\n`);
  let redJs: string;
  try {
    redJs = require.resolve('node-red/red.js');
  } catch {
    throw new Error('Node-RED is not installed here: run "npm install" in the repository (it is a dev dependency)');
  }
  process.stdout.write(`starting Node-RED (user dir ${dir})\n\n  editor: http://127.0.0.1:${port}/\n\nCtrl-C stops it.\n`);
  const child = spawn(process.execPath, [redJs, '--userDir', dir, '--settings', path.join(dir, 'settings.js')], { stdio: 'inherit' });
  const stop = () => child.kill('SIGINT');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 0)));
}


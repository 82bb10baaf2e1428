/**
 * decodeImage refuses paths that are not regular files, fast: a named pipe
 * would otherwise block libvips' open until a writer comes (forever), and a
 * device never ends. The CLI and the enrol and align nodes all decode here.
 */
import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { decodeImage, ImageError } from '../../../nodes/core/media/decode';
import { FACES_DIR } from '../../models';

/** decodeImage's outcome, or 'hung' when it has not settled within ms. */
async function settle(input: string, ms = 3000): Promise<{ code?: string; message?: string; width?: number } | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), ms);
  });
  const outcome = decodeImage(input).then(
    (image) => ({ width: image.width }),
    (error: ImageError) => ({ code: error.code, message: error.message }),
  );
  try {
    return await Promise.race([outcome, hung]);
  } finally {
    clearTimeout(timer);
  }
}

describe('core/media: decodeImage input paths', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'coral-decode-'));
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('a named pipe is refused at once with ERR_IMAGE_NOT_A_FILE (it used to hang forever)', async () => {
    const fifo = path.join(tmp, 'photo.jpg');
    execFileSync('mkfifo', [fifo]);
    try {
      const outcome = await settle(fifo);
      assert.notEqual(outcome, 'hung', 'decodeImage hung on a named pipe');
      assert.equal((outcome as { code: string }).code, 'ERR_IMAGE_NOT_A_FILE');
      assert.match((outcome as { message: string }).message, /named pipe/);
    } finally {
      // Unblock an open that a broken build may have left waiting for a writer.
      try {
        const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
        fs.closeSync(fd);
      } catch {
        // no reader waiting: nothing to unblock
      }
    }
  });

  it('a symlink to a named pipe, a folder and a device are refused too', async () => {
    const fifo = path.join(tmp, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const link = path.join(tmp, 'link.jpg');
    fs.symlinkSync(fifo, link);
    for (const [input, what] of [
      [link, /named pipe/],
      [tmp, /folder/],
      ['/dev/zero', /device/],
    ] as const) {
      const outcome = await settle(input);
      assert.notEqual(outcome, 'hung', `decodeImage hung on ${input}`);
      assert.equal((outcome as { code: string }).code, 'ERR_IMAGE_NOT_A_FILE', input);
      assert.match((outcome as { message: string }).message, what);
    }
  });

  it('a missing file is ERR_IMAGE_NOT_FOUND; a real photo decodes', async () => {
    assert.equal(((await settle(path.join(tmp, 'missing.jpg'))) as { code: string }).code, 'ERR_IMAGE_NOT_FOUND');
    const person = path.join(FACES_DIR, 'Tony_Blair');
    const photo = path.join(
      person,
      fs
        .readdirSync(person)
        .filter((f) => f.endsWith('.jpg'))
        .sort()[0],
    );
    assert.equal(((await settle(photo)) as { width: number }).width, 250);
  });
});

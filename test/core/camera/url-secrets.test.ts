/**
 * Camera URLs with passwords: what the editor moves into the credentials,
 * what the runtime refuses, and how placeholders are filled. The same
 * module runs in the editor (served by camera-in) and in the runtime.
 */
import { strict as assert } from 'assert';
import {
  expandUrlPlaceholders,
  findUrlSecrets,
  moveUrlSecrets,
  usesCredentialPlaceholders,
} from '../../../nodes/core/camera/url-secrets';

const empty = { user: '', password: '' };

describe('core/camera: secrets in camera URLs', () => {
  it('finds passwords and tokens written out, not placeholders nor ordinary parameters', () => {
    assert.deepEqual(findUrlSecrets('rtsp://admin:hunter2@192.168.1.20:554/stream1'), [
      { where: 'userinfo', name: 'password' },
    ]);
    assert.deepEqual(findUrlSecrets('http://cam/cgi-bin/snapshot.cgi?usr=admin&PWD=hunter2&chn=1'), [
      { where: 'query', name: 'PWD' },
    ]);
    assert.deepEqual(
      findUrlSecrets('http://cam/snap.jpg?token=abc&password=x').map((s) => s.name),
      ['token', 'password'],
    );
    for (const clean of [
      'rtsp://192.168.1.20/stream1',
      'rtsp://admin@192.168.1.20/stream1',
      'rtsp://admin:@host/x',
      'rtsp://${user}:${password}@host/x',
      'http://cam/snap.cgi?user=admin&pwd=${password}',
      'http://cam/snap.cgi?pwd=${CAM_PWD}',
      'http://cam/video.mjpg?resolution=640x480&channel=1',
      'http://cam/snap.cgi?pwd=',
      '/dev/video0',
      '/media/clip.mp4',
    ]) {
      assert.deepEqual(findUrlSecrets(clean), [], clean);
    }
  });

  it('moves user:password@ into the fields, decoded, and strips it from the URL', () => {
    const moved = moveUrlSecrets('rtsp://admin:p%40ss:w0rd@192.168.1.20:554/Streaming/Channels/101', empty);
    assert.deepEqual(moved, {
      url: 'rtsp://192.168.1.20:554/Streaming/Channels/101',
      user: 'admin',
      password: 'p@ss:w0rd',
      moved: ['password'],
      unmovable: [],
    });
    // An unencoded @ in the password: the last @ before the host ends the userinfo.
    assert.equal(moveUrlSecrets('rtsp://admin:p@ss@cam/x', empty).password, 'p@ss');
    // It overwrites what the fields held: it is what was just typed.
    assert.equal(moveUrlSecrets('rtsp://bob:new@cam/x', { user: 'alice', password: '__PWRD__' }).password, 'new');
  });

  it('moves a query secret into the Password field and leaves ${password} in its place', () => {
    const moved = moveUrlSecrets('http://cam/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=admin&pwd=s3cr%26t', empty);
    assert.equal(moved.url, 'http://cam/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=admin&pwd=${password}');
    assert.equal(moved.password, 's3cr&t');
    assert.deepEqual(findUrlSecrets(moved.url), []);
    // With a login in the same URL, the URL names both.
    const both = moveUrlSecrets('http://admin:pw@cam/snap.cgi?pwd=pw', empty);
    assert.equal(both.url, 'http://${user}:${password}@cam/snap.cgi?pwd=${password}');
    assert.deepEqual([both.user, both.password], ['admin', 'pw']);
    // The field held the URL's own secret before: a new one replaces it.
    assert.equal(
      moveUrlSecrets('http://cam/snap?pwd=new', { user: 'admin', password: '__PWRD__', passwordForUrl: true }).password,
      'new',
    );
  });

  it('a second secret, or a Password field used by a login, cannot move: it is named for ${NAME}', () => {
    const two = moveUrlSecrets('http://cam/snap.jpg?pwd=a&token=b', empty);
    assert.deepEqual([two.password, two.moved, two.unmovable], ['a', ['pwd'], ['token']]);
    assert.deepEqual(findUrlSecrets(two.url), [{ where: 'query', name: 'token' }]);
    const login = moveUrlSecrets('http://cam/snap.jpg?token=abc', { user: 'admin', password: '__PWRD__' });
    assert.deepEqual(
      [login.url, login.password, login.unmovable],
      ['http://cam/snap.jpg?token=abc', '__PWRD__', ['token']],
    );
    const mixed = moveUrlSecrets('http://admin:pw@cam/snap.jpg?token=abc', empty);
    assert.deepEqual([mixed.url, mixed.password, mixed.unmovable], ['http://cam/snap.jpg?token=abc', 'pw', ['token']]);
  });

  it('fills placeholders URL-encoded, reports the missing ones, says when the URL places the credentials itself', () => {
    const values: Record<string, string> = { user: 'admin', password: 'a&b c', CAM_TOKEN: 't/1' };
    const expanded = expandUrlPlaceholders(
      'http://${user}:${password}@cam/snap?pwd=${password}&token=${CAM_TOKEN}',
      (n) => values[n],
    );
    assert.equal(expanded.url, 'http://admin:a%26b%20c@cam/snap?pwd=a%26b%20c&token=t%2F1');
    assert.deepEqual(expanded.values, ['admin', 'a&b c', 'a&b c', 't/1']);
    assert.deepEqual(expandUrlPlaceholders('http://cam/snap?pwd=${CAM_PWD}&x=${password}', () => undefined).missing, [
      'CAM_PWD',
      'password',
    ]);
    assert.equal(usesCredentialPlaceholders('http://cam/snap?pwd=${password}'), true);
    assert.equal(usesCredentialPlaceholders('http://cam/snap?pwd=${CAM_PWD}'), false);
  });
});

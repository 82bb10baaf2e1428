#!/usr/bin/python3
"""A real RTSP server for the camera tests, on Debian's GStreamer (GstRtspServer).

Serves one video file, looping forever, at rtsp://<address>:<port>/<path>,
optionally behind RTSP basic auth so a wrong password gets 401 Unauthorized.

Looping: a demuxer reaching EOS ends the RTSP media, and seeking back inside a
live RTSP pipeline rewinds timestamps under the clients' feet. So the file is
decoded once at start-up into raw frames, and an appsrc plays them round and
round, stamped with the pipeline clock (do-timestamp) and re-encoded with
x264: timestamps only ever grow, and the loop is seamless. Test clips are
small (a few seconds at 320x240), so keeping the frames in memory is cheap.

Usage: rtsp_server.py --file F --port P [--path /cam] [--user U --password W]
Prints "READY <port>" on stdout once listening. Exits when stdin closes, so
a test runner that dies never leaves this server behind.
"""
import argparse
import os
import signal
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def decode_file(path):
    """All frames of the file's first video stream as I420, plus their caps."""
    pipeline = Gst.parse_launch(
        'filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=I420 '
        '! appsink name=sink sync=false max-buffers=0')
    pipeline.get_by_name('src').set_property('location', path)
    sink = pipeline.get_by_name('sink')
    pipeline.set_state(Gst.State.PLAYING)
    frames = []
    caps = None
    while True:
        sample = sink.emit('pull-sample')
        if sample is None:  # EOS or error
            break
        caps = sample.get_caps()
        frames.append(sample.get_buffer().copy_deep())
    bus = pipeline.get_bus()
    error = bus.pop_filtered(Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if error is not None:
        err, _ = error.parse_error()
        raise RuntimeError('cannot decode %s: %s' % (path, err.message))
    if not frames:
        raise RuntimeError('no video frames in %s' % path)
    return frames, caps


class LoopFactory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, frames, caps, fps):
        super().__init__()
        self.frames = frames
        self.fps = fps
        structure = caps.get_structure(0)
        width = structure.get_value('width')
        height = structure.get_value('height')
        self.caps = Gst.Caps.from_string(
            'video/x-raw,format=I420,width=%d,height=%d,framerate=%d/1' % (width, height, fps))
        # One pipeline shared by all clients, like a camera: each client joins the live stream.
        self.set_shared(True)
        self.connect('media-configure', self.on_media_configure)

    def do_create_element(self, url):
        launch = (
            '( appsrc name=src is-live=true do-timestamp=true format=time '
            '! videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=%d '
            '! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1 )' % self.fps)
        return Gst.parse_launch(launch)

    def on_media_configure(self, _factory, media):
        appsrc = media.get_element().get_child_by_name('src')
        appsrc.set_property('caps', self.caps)
        state = {'index': 0, 'source': None}

        def push():
            buf = self.frames[state['index'] % len(self.frames)].copy()
            # do-timestamp stamps with the running time; clear the file's own stamps.
            buf.pts = Gst.CLOCK_TIME_NONE
            buf.dts = Gst.CLOCK_TIME_NONE
            buf.duration = Gst.SECOND // self.fps
            state['index'] += 1
            return appsrc.emit('push-buffer', buf) == Gst.FlowReturn.OK

        def tick():
            if not push():
                state['source'] = None
                return False
            return True

        # Pace pushes in real time: the appsrc is a live source.
        state['source'] = GLib.timeout_add(max(1, 1000 // self.fps), tick)

        def on_unprepared(_media):
            if state['source'] is not None:
                GLib.source_remove(state['source'])
                state['source'] = None

        media.connect('unprepared', on_unprepared)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--file', required=True)
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--address', default='127.0.0.1')
    parser.add_argument('--path', default='/cam')
    parser.add_argument('--fps', type=int, default=10)
    parser.add_argument('--user')
    parser.add_argument('--password')
    args = parser.parse_args()

    Gst.init(None)
    frames, caps = decode_file(args.file)

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    factory = LoopFactory(frames, caps, args.fps)

    if args.user is not None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string('media.factory.role', 'user')
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ''), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role('user', 'media.factory.access', True)
        permissions.add_permission_for_role('user', 'media.factory.construct', True)
        factory.set_permissions(permissions)

    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print('ERROR cannot listen on %s:%d' % (args.address, args.port), flush=True)
        sys.exit(1)

    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)

    def on_stdin(_channel, _condition):
        # EOF or hang-up on stdin: the parent is gone (or wants us gone).
        loop.quit()
        return False

    stdin = GLib.IOChannel.unix_new(sys.stdin.fileno())
    GLib.io_add_watch(stdin, GLib.PRIORITY_DEFAULT, GLib.IOCondition.IN | GLib.IOCondition.HUP, on_stdin)

    print('READY %d' % args.port, flush=True)
    loop.run()
    # Tearing down a playing shared media can block interpreter shutdown;
    # a test server has nothing to flush, so leave at once.
    sys.stdout.flush()
    os._exit(0)


if __name__ == '__main__':
    main()

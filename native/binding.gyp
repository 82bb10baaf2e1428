# Builds the native runtime: one addon over the TFLite 2.9 C API.
#
# Users do not build it: the package carries prebuilt addons for linux-x64 and
# linux-arm64 (native/prebuilds/, made by `npm run prebuilds`). This file is
# used by that script, by developers, and by the install script when no
# prebuilt addon loads and a compiler is there (native/scripts/install.mjs).
#
# The TFLite C library and its headers are the ones tfjs-tflite-node carries
# (cc_deps/), vendored into native/prebuilds/linux-<arch>/ and native/tflite/
# by native/scripts/tflite.mjs, so the package builds with no network and no
# tfjs-tflite-node. The library is copied next to the addon and found through
# an $ORIGIN rpath. We stay on 2.9: its C structs match what Coral's
# libedgetpu 16.0 was compiled against (see README, "Edge TPU").
{
  'variables': {
    'conditions': [
      ['target_arch=="arm64"', { 'tflite_platform': 'linux-arm64' }, { 'tflite_platform': 'linux-x64' }],
    ],
  },
  'targets': [
    {
      'target_name': 'coral_face_native',
      'sources': ['src/addon.cc', 'src/engine.cc', 'src/edgetpu.cc', 'src/resample.cc'],
      'include_dirs': [
        '<!(node -p "require(\'node-addon-api\').include_dir")',
        'tflite/include',
      ],
      'defines': ['NAPI_VERSION=8', 'NAPI_CPP_EXCEPTIONS'],
      'cflags!': ['-fno-exceptions'],
      'cflags_cc!': ['-fno-exceptions', '-std=gnu++17'],
      'cflags_cc': ['-std=c++17', '-fexceptions', '-O3', '-Wall', '-Wextra', '-Wno-unused-parameter'],
      'libraries': [
        '<(PRODUCT_DIR)/libtensorflowlite_c.so',
        '-ldl',
        "-Wl,-rpath,'$$ORIGIN'",
      ],
      'dependencies': ['copy_tflite'],
    },
    {
      'target_name': 'copy_tflite',
      'type': 'none',
      'copies': [{
        'destination': '<(PRODUCT_DIR)',
        'files': ['prebuilds/<(tflite_platform)/libtensorflowlite_c.so'],
      }],
    },
  ],
}

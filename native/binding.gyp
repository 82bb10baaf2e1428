# Builds the native runtime (one addon over the TFLite 2.9 C API) and a tiny
# external-delegate plugin that lets the benchmark switch XNNPACK on in the
# peer binding (tfjs-tflite-node has no option for it).
#
# The TFLite C library comes from the tfjs-tflite-node npm package (cc_deps/),
# so nothing is downloaded at install time. It is copied next to the addon and
# found through an $ORIGIN rpath. We stay on 2.9: its C structs match what
# Coral's libedgetpu 16.0 was compiled against (see README, "Edge TPU").
{
  'variables': {
    'tflite_root': '<!(node -p "require(\'path\').dirname(require.resolve(\'tfjs-tflite-node/package.json\'))")',
    'conditions': [
      ['target_arch=="arm64"', { 'tflite_arch': 'linux_arm64' }, { 'tflite_arch': 'linux_amd64' }],
    ],
  },
  'targets': [
    {
      'target_name': 'coral_face_native',
      'sources': ['src/addon.cc', 'src/engine.cc', 'src/edgetpu.cc', 'src/resample.cc'],
      'include_dirs': [
        '<!(node -p "require(\'node-addon-api\').include_dir")',
        '<(tflite_root)/cc_deps/include',
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
        'files': ['<(tflite_root)/cc_deps/<(tflite_arch)/libtensorflowlite_c.so'],
      }],
    },
    {
      'target_name': 'xnnpack_plugin',
      'type': 'shared_library',
      'product_extension': 'so',
      'sources': ['src/xnnpack_plugin.c'],
      'include_dirs': ['<(tflite_root)/cc_deps/include'],
      'libraries': ['<(PRODUCT_DIR)/libtensorflowlite_c.so', "-Wl,-rpath,'$$ORIGIN'"],
      'dependencies': ['copy_tflite'],
    },
  ],
}

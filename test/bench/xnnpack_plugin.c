// An external-delegate plugin (the tflite_plugin_* entry points that TFLite's
// external delegate loader looks for) that hands out the XNNPACK delegate of
// the same libtensorflowlite_c. Its only use is the benchmark: it gives the
// peer binding, tfjs-tflite-node, an "XNNPACK on" mode through its delegate
// option, so both bindings can be compared on equal terms.
#include <stdlib.h>
#include <string.h>

#include "tflite_extra.h"

TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t num_options,
                                              void (*report_error)(const char*)) {
  TfLiteXNNPackDelegateOptions options = TfLiteXNNPackDelegateOptionsDefault();
  options.num_threads = 1;
  for (size_t i = 0; i < num_options; i++) {
    if (strcmp(keys[i], "num_threads") == 0) options.num_threads = atoi(values[i]);
  }
  return TfLiteXNNPackDelegateCreate(&options);
}

void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate) { TfLiteXNNPackDelegateDelete(delegate); }

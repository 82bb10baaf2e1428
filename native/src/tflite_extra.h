// Declarations that the TFLite 2.9 C library exports but whose headers do not
// ship in tfjs-tflite-node's cc_deps. Layouts follow TF 2.9's
// tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h (two 32-bit fields;
// checked against the library: TfLiteXNNPackDelegateOptionsDefault returns the
// struct in one 64-bit register and Create reads 8 bytes of it).
#pragma once

#include <stdint.h>

#include "tensorflow/lite/c/c_api.h"
#include "tensorflow/lite/c/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int32_t num_threads;  // <= 0: no thread pool
  uint32_t flags;       // TFLITE_XNNPACK_DELEGATE_FLAG_*
} TfLiteXNNPackDelegateOptions;

#define CORAL_XNNPACK_FLAG_QS8 0x00000001u
#define CORAL_XNNPACK_FLAG_QU8 0x00000002u

TfLiteXNNPackDelegateOptions TfLiteXNNPackDelegateOptionsDefault(void);
TfLiteDelegate* TfLiteXNNPackDelegateCreate(const TfLiteXNNPackDelegateOptions* options);
void TfLiteXNNPackDelegateDelete(TfLiteDelegate* delegate);

#ifdef __cplusplus
}
#endif

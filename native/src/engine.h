// Engine: one TFLite interpreter with its delegates, free of any Node-API
// code so that the same object serves the in-process CPU runtime and the
// supervised Edge TPU child process.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "tflite_extra.h"

namespace coral {

// An error with a stable code (mirrored in native/errors.ts) and a message
// that tells the user what to do.
struct EngineError {
  std::string code;
  std::string message;
};

struct EdgeTpuRequest {
  std::string library;  // path or soname given to dlopen
  int device_type = 0;  // EDGETPU_APEX_PCI = 0, EDGETPU_APEX_USB = 1
  std::string device_path;
  std::vector<std::pair<std::string, std::string>> options;
};

struct EngineOptions {
  int threads = 1;
  bool xnnpack = true;
  bool use_edgetpu = false;
  EdgeTpuRequest edgetpu;
};

struct TensorMeta {
  std::string name;
  TfLiteType type = kTfLiteNoType;
  std::vector<int> shape;
  float scale = 0;
  int32_t zero_point = 0;
  size_t bytes = 0;
};

struct InputView {
  const void* data;
  size_t bytes;
};

class Engine {
 public:
  // model_path is used when model_bytes is empty. Returns nullptr and fills
  // error on failure.
  static std::unique_ptr<Engine> Create(const std::string& model_path, std::vector<char> model_bytes,
                                        const EngineOptions& options, EngineError* error);
  ~Engine();

  // Take the mutex too: callers cache the result (see native/runtime.ts)
  // rather than wait here behind a running invoke.
  std::vector<TensorMeta> Inputs() const;
  std::vector<TensorMeta> Outputs() const;

  // Both take the engine's mutex: the interpreter is not thread-safe, and
  // invocations arrive from the libuv thread pool.
  bool ResizeInput(int index, const std::vector<int>& dims, EngineError* error);
  bool Invoke(const std::vector<InputView>& inputs, std::vector<std::vector<unsigned char>>* outputs,
              EngineError* error);

  // Appended to by TFLite's error reporter; read to explain failures.
  std::string log;

 private:
  Engine() = default;
  // Interpreter options, the XNNPACK delegate and the interpreter, from
  // options_; the model and the Edge TPU delegate stay.
  bool BuildInterpreter(EngineError* error);
  void DeleteInterpreter();
  mutable std::mutex mutex_;
  EngineOptions options_;
  std::vector<char> model_bytes_;  // TfLiteModelCreate does not copy the buffer
  TfLiteModel* model_ = nullptr;
  TfLiteInterpreterOptions* interpreter_options_ = nullptr;
  TfLiteInterpreter* interpreter_ = nullptr;
  TfLiteDelegate* xnnpack_ = nullptr;
  TfLiteDelegate* edgetpu_ = nullptr;
  void (*free_edgetpu_)(TfLiteDelegate*) = nullptr;
};

const char* TypeName(TfLiteType type);

}  // namespace coral

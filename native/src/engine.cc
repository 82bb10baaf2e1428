#include "engine.h"

#include <cstdarg>
#include <cstdio>

#include "edgetpu.h"
#include <fcntl.h>
#include <unistd.h>
#include <cstdlib>

namespace {
/** Sends fd 2 to /dev/null for its lifetime (when `active`), then restores it. */
class QuietStderr {
 public:
  explicit QuietStderr(bool active) {
    if (!active) return;
    fflush(stderr);
    saved_ = dup(2);
    int null_fd = open("/dev/null", O_WRONLY);
    if (saved_ < 0 || null_fd < 0 || dup2(null_fd, 2) < 0) {
      if (null_fd >= 0) close(null_fd);
      if (saved_ >= 0) close(saved_);
      saved_ = -1;
      return;
    }
    close(null_fd);
  }
  ~QuietStderr() {
    if (saved_ < 0) return;
    fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
  }
  QuietStderr(const QuietStderr&) = delete;
  QuietStderr& operator=(const QuietStderr&) = delete;

 private:
  int saved_ = -1;
};
}  // namespace

namespace coral {

namespace {

void ReportToLog(void* user_data, const char* format, va_list args) {
  char line[1024];
  vsnprintf(line, sizeof(line), format, args);
  auto* log = static_cast<std::string*>(user_data);
  if (log->size() < 16384) {  // a broken model can report per node; keep it bounded
    log->append(line);
    log->push_back('\n');
  }
}

bool Contains(const std::string& haystack, const char* needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string LastLines(const std::string& log) {
  std::string trimmed = log;
  while (!trimmed.empty() && trimmed.back() == '\n') trimmed.pop_back();
  if (trimmed.size() > 600) trimmed = "..." + trimmed.substr(trimmed.size() - 600);
  return trimmed;
}

EngineError ExplainBuildFailure(const std::string& log, const char* code, const char* what) {
  if (Contains(log, "unresolved custom op") || Contains(log, "Didn't find op for builtin opcode") ||
      Contains(log, "Encountered unresolved")) {
    std::string hint = Contains(log, "edgetpu-custom-op")
                           ? " This is an Edge TPU-compiled model: run it on a Coral device, or give the CPU "
                             "model of the pair (X.tflite beside X_edgetpu.tflite)."
                           : " Use a model built from TFLite builtin ops (TF 2.9 or older op versions).";
    return {"ERR_UNSUPPORTED_OPS", "the CPU cannot run this model's ops: " + LastLines(log) + "." + hint};
  }
  return {code, std::string(what) + ": " + LastLines(log)};
}

TensorMeta Describe(const TfLiteTensor* tensor) {
  TensorMeta meta;
  const char* name = TfLiteTensorName(tensor);
  meta.name = name != nullptr ? name : "";
  meta.type = TfLiteTensorType(tensor);
  for (int i = 0; i < TfLiteTensorNumDims(tensor); i++) meta.shape.push_back(TfLiteTensorDim(tensor, i));
  TfLiteQuantizationParams q = TfLiteTensorQuantizationParams(tensor);
  meta.scale = q.scale;
  meta.zero_point = q.zero_point;
  meta.bytes = TfLiteTensorByteSize(tensor);
  return meta;
}

}  // namespace

const char* TypeName(TfLiteType type) {
  switch (type) {
    case kTfLiteFloat32: return "float32";
    case kTfLiteInt32: return "int32";
    case kTfLiteUInt8: return "uint8";
    case kTfLiteInt64: return "int64";
    case kTfLiteBool: return "bool";
    case kTfLiteInt16: return "int16";
    case kTfLiteInt8: return "int8";
    case kTfLiteFloat16: return "float16";
    case kTfLiteFloat64: return "float64";
    default: return "unsupported";
  }
}

std::unique_ptr<Engine> Engine::Create(const std::string& model_path, std::vector<char> model_bytes,
                                       const EngineOptions& options, EngineError* error) {
  std::unique_ptr<Engine> engine(new Engine());
  engine->model_bytes_ = std::move(model_bytes);
  if (!engine->model_bytes_.empty()) {
    engine->model_ = TfLiteModelCreate(engine->model_bytes_.data(), engine->model_bytes_.size());
  } else {
    engine->model_ = TfLiteModelCreateFromFile(model_path.c_str());
  }
  if (engine->model_ == nullptr) {
    *error = {"ERR_MODEL_INVALID",
              "the model is not a valid TFLite flatbuffer (" +
                  (model_path.empty() ? std::string("buffer") : model_path) +
                  "): check that the file is a complete .tflite model"};
    return nullptr;
  }

  if (options.use_edgetpu) {
    std::string load_error;
    const EdgeTpuLibrary* library = LoadEdgeTpu(options.edgetpu.library, &load_error);
    if (library == nullptr) {
      *error = {"ERR_EDGETPU_LIBRARY", "libedgetpu could not be loaded: " + load_error};
      return nullptr;
    }
    std::vector<EdgeTpuOptionC> c_options;
    for (const auto& option : options.edgetpu.options) {
      c_options.push_back({option.first.c_str(), option.second.c_str()});
    }
    // Never pass a NULL name together with options: libedgetpu CHECKs it.
    engine->edgetpu_ = library->create_delegate(options.edgetpu.device_type, options.edgetpu.device_path.c_str(),
                                                c_options.empty() ? nullptr : c_options.data(), c_options.size());
    if (engine->edgetpu_ == nullptr) {
      *error = {"ERR_EDGETPU_DELEGATE",
                "the Edge TPU at " + options.edgetpu.device_path +
                    " could not be opened (in use, no permission, or firmware load failed)"};
      return nullptr;
    }
    engine->free_edgetpu_ = library->free_delegate;
  }
  engine->options_ = options;
  if (!engine->BuildInterpreter(error)) return nullptr;
  return engine;
}

bool Engine::BuildInterpreter(EngineError* error) {
  interpreter_options_ = TfLiteInterpreterOptionsCreate();
  TfLiteInterpreterOptionsSetErrorReporter(interpreter_options_, ReportToLog, &log);
  TfLiteInterpreterOptionsSetNumThreads(interpreter_options_, options_.threads);
  // The Edge TPU delegate goes first so it claims the compiled custom op;
  // XNNPACK below then takes whatever CPU ops remain.
  if (edgetpu_ != nullptr) TfLiteInterpreterOptionsAddDelegate(interpreter_options_, edgetpu_);
  if (options_.xnnpack) {
    TfLiteXNNPackDelegateOptions xnnpack_options = TfLiteXNNPackDelegateOptionsDefault();
    xnnpack_options.num_threads = options_.threads;
    // Let XNNPACK run int8/uint8 models too where this build supports it.
    xnnpack_options.flags |= CORAL_XNNPACK_FLAG_QS8 | CORAL_XNNPACK_FLAG_QU8;
    {
      // TFLite's C library prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." to stderr
      // here (its minimal logger has no level to set in 2.9): hidden unless CORAL_FACE_TFLITE_LOG is set.
      QuietStderr quiet(std::getenv("CORAL_FACE_TFLITE_LOG") == nullptr);
      xnnpack_ = TfLiteXNNPackDelegateCreate(&xnnpack_options);
    }
    if (xnnpack_ != nullptr) TfLiteInterpreterOptionsAddDelegate(interpreter_options_, xnnpack_);
  }

  // A model with ops the CPU lacks fails here when a delegate is attached,
  // or at AllocateTensors when none is: explain both the same way.
  interpreter_ = TfLiteInterpreterCreate(model_, interpreter_options_);
  if (interpreter_ == nullptr) {
    *error = ExplainBuildFailure(log, "ERR_INTERPRETER", "TFLite could not build an interpreter for this model");
    return false;
  }
  if (TfLiteInterpreterAllocateTensors(interpreter_) != kTfLiteOk) {
    *error = ExplainBuildFailure(log, "ERR_ALLOCATE", "TFLite could not allocate the model's tensors");
    return false;
  }
  return true;
}

void Engine::DeleteInterpreter() {
  // Order matters: the interpreter uses the delegates.
  if (interpreter_ != nullptr) TfLiteInterpreterDelete(interpreter_);
  if (xnnpack_ != nullptr) TfLiteXNNPackDelegateDelete(xnnpack_);
  if (interpreter_options_ != nullptr) TfLiteInterpreterOptionsDelete(interpreter_options_);
  interpreter_ = nullptr;
  xnnpack_ = nullptr;
  interpreter_options_ = nullptr;
}

Engine::~Engine() {
  // libedgetpu's delegate must outlive the interpreter that ran it.
  DeleteInterpreter();
  if (edgetpu_ != nullptr && free_edgetpu_ != nullptr) free_edgetpu_(edgetpu_);
  if (model_ != nullptr) TfLiteModelDelete(model_);
}

std::vector<TensorMeta> Engine::Inputs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<TensorMeta> metas;
  if (interpreter_ == nullptr) return metas;
  int count = TfLiteInterpreterGetInputTensorCount(interpreter_);
  for (int i = 0; i < count; i++) metas.push_back(Describe(TfLiteInterpreterGetInputTensor(interpreter_, i)));
  return metas;
}

std::vector<TensorMeta> Engine::Outputs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<TensorMeta> metas;
  if (interpreter_ == nullptr) return metas;
  int count = TfLiteInterpreterGetOutputTensorCount(interpreter_);
  for (int i = 0; i < count; i++) metas.push_back(Describe(TfLiteInterpreterGetOutputTensor(interpreter_, i)));
  return metas;
}

bool Engine::ResizeInput(int index, const std::vector<int>& dims, EngineError* error) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (interpreter_ == nullptr) {
    *error = {"ERR_INTERPRETER", "the interpreter was lost after a refused resize: open the model again"};
    return false;
  }
  int count = TfLiteInterpreterGetInputTensorCount(interpreter_);
  if (index < 0 || index >= count) {
    *error = {"ERR_INPUT_INDEX", "input " + std::to_string(index) + " does not exist: the model has " +
                                     std::to_string(count) + " input(s)"};
    return false;
  }
  log.clear();
  if (TfLiteInterpreterResizeInputTensor(interpreter_, index, dims.data(), static_cast<int>(dims.size())) !=
          kTfLiteOk ||
      TfLiteInterpreterAllocateTensors(interpreter_) != kTfLiteOk) {
    *error = {"ERR_RESIZE", "the model cannot take this input shape: " + LastLines(log)};
    // A failed allocation leaves the interpreter, and the XNNPACK kernels in
    // it, unusable (the next invoke crashes). Build a fresh one at the
    // model's own shapes, so a refused resize costs nothing but the error.
    DeleteInterpreter();
    EngineError rebuild_error;
    if (!BuildInterpreter(&rebuild_error)) {
      DeleteInterpreter();
      error->message += "; and the interpreter could not be rebuilt: " + rebuild_error.message;
    }
    return false;
  }
  return true;
}

bool Engine::Invoke(const std::vector<InputView>& inputs, std::vector<std::vector<unsigned char>>* outputs,
                    EngineError* error) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (interpreter_ == nullptr) {
    *error = {"ERR_INTERPRETER", "the interpreter was lost after a refused resize: open the model again"};
    return false;
  }
  int count = TfLiteInterpreterGetInputTensorCount(interpreter_);
  if (static_cast<int>(inputs.size()) != count) {
    *error = {"ERR_INPUT_COUNT", "the model takes " + std::to_string(count) + " input(s), got " +
                                     std::to_string(inputs.size())};
    return false;
  }
  for (int i = 0; i < count; i++) {
    TfLiteTensor* tensor = TfLiteInterpreterGetInputTensor(interpreter_, i);
    size_t expected = TfLiteTensorByteSize(tensor);
    if (inputs[i].bytes != expected) {
      *error = {"ERR_INPUT_SIZE", "input " + std::to_string(i) + " needs " + std::to_string(expected) +
                                      " bytes, got " + std::to_string(inputs[i].bytes)};
      return false;
    }
    TfLiteTensorCopyFromBuffer(tensor, inputs[i].data, inputs[i].bytes);
  }
  log.clear();
  if (TfLiteInterpreterInvoke(interpreter_) != kTfLiteOk) {
    *error = {"ERR_INVOKE", "inference failed: " + LastLines(log)};
    return false;
  }
  int output_count = TfLiteInterpreterGetOutputTensorCount(interpreter_);
  outputs->resize(output_count);
  for (int i = 0; i < output_count; i++) {
    const TfLiteTensor* tensor = TfLiteInterpreterGetOutputTensor(interpreter_, i);
    (*outputs)[i].resize(TfLiteTensorByteSize(tensor));
    TfLiteTensorCopyToBuffer(tensor, (*outputs)[i].data(), (*outputs)[i].size());
  }
  return true;
}

}  // namespace coral

// Node-API surface of the runtime. Everything that can take time runs off
// the main thread and settles a Promise: opening a model on the libuv thread
// pool (once), resizing and invoking on the interpreter's own thread. One
// thread per interpreter, rather than whichever pool thread is free, keeps
// the interpreter's working set warm in that thread's cache (BlazeFace runs
// faster than hopping pool threads; the figures are in the README's design
// notes) and leaves the
// pool to file and DNS work. The main thread only validates and hands over.
#include <napi.h>

#include <sys/file.h>

#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <thread>

#include "edgetpu.h"
#include "engine.h"
#include "resample.h"

namespace coral {

namespace {

Napi::Error MakeError(Napi::Env env, const EngineError& error) {
  Napi::Error js = Napi::Error::New(env, error.message);
  js.Set("code", Napi::String::New(env, error.code));
  return js;
}

Napi::Array DescribeTensors(Napi::Env env, const std::vector<TensorMeta>& metas) {
  Napi::Array list = Napi::Array::New(env, metas.size());
  for (size_t i = 0; i < metas.size(); i++) {
    const TensorMeta& meta = metas[i];
    Napi::Object tensor = Napi::Object::New(env);
    tensor.Set("index", Napi::Number::New(env, static_cast<double>(i)));
    tensor.Set("name", Napi::String::New(env, meta.name));
    tensor.Set("dtype", Napi::String::New(env, TypeName(meta.type)));
    Napi::Array shape = Napi::Array::New(env, meta.shape.size());
    for (size_t d = 0; d < meta.shape.size(); d++) shape.Set(d, Napi::Number::New(env, meta.shape[d]));
    tensor.Set("shape", shape);
    tensor.Set("scale", Napi::Number::New(env, meta.scale));
    tensor.Set("zeroPoint", Napi::Number::New(env, meta.zero_point));
    tensor.Set("byteLength", Napi::Number::New(env, static_cast<double>(meta.bytes)));
    list.Set(i, tensor);
  }
  return list;
}

EngineOptions ReadOptions(const Napi::Object& js) {
  EngineOptions options;
  if (js.Has("threads")) options.threads = js.Get("threads").As<Napi::Number>().Int32Value();
  if (js.Has("xnnpack")) options.xnnpack = js.Get("xnnpack").As<Napi::Boolean>().Value();
  if (js.Has("edgetpu") && js.Get("edgetpu").IsObject()) {
    Napi::Object tpu = js.Get("edgetpu").As<Napi::Object>();
    options.use_edgetpu = true;
    options.edgetpu.library = tpu.Get("library").As<Napi::String>().Utf8Value();
    options.edgetpu.device_type = tpu.Get("type").As<Napi::String>().Utf8Value() == "usb" ? kEdgeTpuUsb : kEdgeTpuPci;
    options.edgetpu.device_path = tpu.Get("path").As<Napi::String>().Utf8Value();
    if (tpu.Has("options") && tpu.Get("options").IsObject()) {
      Napi::Object opts = tpu.Get("options").As<Napi::Object>();
      Napi::Array keys = opts.GetPropertyNames();
      for (uint32_t i = 0; i < keys.Length(); i++) {
        std::string key = keys.Get(i).As<Napi::String>().Utf8Value();
        options.edgetpu.options.emplace_back(key, opts.Get(key).ToString().Utf8Value());
      }
    }
  }
  return options;
}

}  // namespace

// A job for the interpreter's thread: `run` executes there; `settle` runs
// back on the main thread with the outcome.
struct Job {
  std::function<bool(EngineError*)> run;
  std::function<void(Napi::Env, bool ok, const EngineError&)> settle;
  EngineError error;
  bool ok = false;
};

// The interpreter's own thread: runs jobs in order and hands each one back to
// the main thread through a thread-safe function. The main thread never waits
// for it: dispose() only asks it to finish the jobs it has and stop.
//
// Process exit: Node tears the thread-safe function down at environment
// cleanup, possibly while our thread is still alive; touching it afterwards
// aborts the process. So the thread touches it only under `gate`, and an
// environment cleanup hook (it runs before the function's own, hooks run in
// reverse order) closes the gate for good.
class InferenceThread {
 public:
  explicit InferenceThread(Napi::Env env) : env_(env), gate_(std::make_shared<Gate>()) {
    tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo&) {}),
                                          "coral-face-inference", 0, 1, this,
                                          [](Napi::Env, InferenceThread* self) { self->Finalized(); });
    // An idle interpreter must not keep Node alive; pending jobs do (Ref in Post).
    tsfn_.Unref(env);
    napi_add_env_cleanup_hook(env, OnEnvCleanup, this);
    std::shared_ptr<Gate> gate = gate_;
    std::thread([this, gate] { Loop(gate); }).detach();
  }

  // Main thread only.
  void Post(Napi::Env env, std::unique_ptr<Job> job) {
    if (pending_++ == 0) tsfn_.Ref(env);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    wake_.notify_one();
  }

  // Main thread only: no new jobs after this; the thread ends after the queued ones.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_one();
  }

 private:
  struct Gate {
    std::mutex mutex;
    bool open = true;  // false once the environment is being torn down
  };

  static void OnEnvCleanup(void* data) {
    auto* self = static_cast<InferenceThread*>(data);
    std::lock_guard<std::mutex> lock(self->gate_->mutex);
    self->gate_->open = false;
    self->hook_removed_ = true;  // Node removes hooks as it runs them
  }

  // Main thread, after the last Release (normal end) or at teardown.
  void Finalized() {
    bool tearing_down;
    {
      std::lock_guard<std::mutex> lock(gate_->mutex);
      tearing_down = !gate_->open;
    }
    // At teardown our thread may still be parked in Loop(): leave the object be.
    if (tearing_down) return;
    if (!hook_removed_) napi_remove_env_cleanup_hook(env_, OnEnvCleanup, this);
    delete this;
  }

  void Loop(std::shared_ptr<Gate> gate) {
    for (;;) {
      std::unique_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) break;  // stopping, and nothing left to do
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job->ok = job->run(&job->error);
      std::lock_guard<std::mutex> lock(gate->mutex);
      if (!gate->open) return;  // Node is exiting: nobody is waiting for the result
      tsfn_.BlockingCall(job.release(), [this](Napi::Env env, Napi::Function, Job* finished) {
        std::unique_ptr<Job> owned(finished);
        owned->settle(env, owned->ok, owned->error);
        if (--pending_ == 0) tsfn_.Unref(env);
      });
    }
    // Release is our last touch of `this`: its finalizer may delete us on the
    // main thread right after, so only `gate` (our own copy) is used below.
    std::lock_guard<std::mutex> lock(gate->mutex);
    if (gate->open) tsfn_.Release();
  }

  napi_env env_;
  std::shared_ptr<Gate> gate_;
  bool hook_removed_ = false;
  Napi::ThreadSafeFunction tsfn_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> jobs_;
  bool stopping_ = false;
  int pending_ = 0;  // main thread only
};

class Interpreter : public Napi::ObjectWrap<Interpreter> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Interpreter",
                       {
                           InstanceMethod<&Interpreter::Inputs>("inputs"),
                           InstanceMethod<&Interpreter::Outputs>("outputs"),
                           InstanceMethod<&Interpreter::ResizeInput>("resizeInput"),
                           InstanceMethod<&Interpreter::Invoke>("invoke"),
                           InstanceMethod<&Interpreter::Dispose>("dispose"),
                       });
  }

  explicit Interpreter(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Interpreter>(info) {
    // Only OpenWorker constructs us, handing over the engine through an External.
    if (info.Length() == 1 && info[0].IsExternal()) {
      auto* engine = info[0].As<Napi::External<std::shared_ptr<Engine>>>().Data();
      engine_ = *engine;
      thread_ = new InferenceThread(info.Env());
    }
  }

  ~Interpreter() override {
    if (thread_ != nullptr) thread_->Stop();
  }

 private:
  std::shared_ptr<Engine> Live(Napi::Env env) {
    if (!engine_) {
      throw MakeError(env, {"ERR_DISPOSED", "this runtime was disposed: open the model again to use it"});
    }
    return engine_;
  }

  Napi::Value Inputs(const Napi::CallbackInfo& info) { return DescribeTensors(info.Env(), Live(info.Env())->Inputs()); }
  Napi::Value Outputs(const Napi::CallbackInfo& info) {
    return DescribeTensors(info.Env(), Live(info.Env())->Outputs());
  }

  Napi::Value ResizeInput(const Napi::CallbackInfo& info);
  Napi::Value Invoke(const Napi::CallbackInfo& info);

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    // Jobs already queued hold their own reference and still run; the engine
    // is freed when the last of them finishes, the thread ends after them.
    engine_.reset();
    if (thread_ != nullptr) thread_->Stop();
    thread_ = nullptr;  // it deletes itself once its queue is empty
    return info.Env().Undefined();
  }

  std::shared_ptr<Engine> engine_;
  InferenceThread* thread_ = nullptr;
};

// Base for workers that settle a promise and may fail with an EngineError.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Fail(const EngineError& error) {
    error_ = error;
    SetError(error.message);
  }
  void OnError(const Napi::Error&) override { deferred_.Reject(MakeError(Env(), error_).Value()); }
  Napi::Promise::Deferred deferred_;
  EngineError error_;
};

class OpenWorker : public PromiseWorker {
 public:
  OpenWorker(Napi::Env env, std::string path, std::vector<char> bytes, EngineOptions options)
      : PromiseWorker(env), path_(std::move(path)), bytes_(std::move(bytes)), options_(std::move(options)) {}

  void Execute() override {
    EngineError error;
    std::unique_ptr<Engine> engine = Engine::Create(path_, std::move(bytes_), options_, &error);
    if (!engine) return Fail(error);
    engine_ = std::move(engine);
  }

  void OnOK() override {
    Napi::Env env = Env();
    auto* constructor = env.GetInstanceData<Napi::FunctionReference>();
    std::shared_ptr<Engine> shared = std::move(engine_);
    Napi::Object wrapped = constructor->New({Napi::External<std::shared_ptr<Engine>>::New(env, &shared)});
    deferred_.Resolve(wrapped);
  }

 private:
  std::string path_;
  std::vector<char> bytes_;
  EngineOptions options_;
  std::unique_ptr<Engine> engine_;
};

// Resamples on the libuv pool into a Float32Array allocated up front, so
// nothing is copied on the way back. The source and the taps are held by
// references until the work is done; callers must not write to them meanwhile
// (camera frames are never written after capture).
class ResampleWorker : public PromiseWorker {
 public:
  ResampleWorker(Napi::Env env, Napi::TypedArray src, int width, Napi::Object x, Napi::Object y, float scale,
                 float offset)
      : PromiseWorker(env), width_(width), scale_(scale), offset_(offset) {
    held_.push_back(Napi::Persistent(src.As<Napi::Object>()));
    src_ = static_cast<const uint8_t*>(src.ArrayBuffer().Data()) + src.ByteOffset();
    x_ = Hold(x);
    y_ = Hold(y);
    output_ = Napi::Persistent(Napi::Float32Array::New(env, static_cast<size_t>(x_.outputs) * y_.outputs * 3));
    out_ = output_.Value().Data();
  }

  void Execute() override { ResampleRgb(src_, width_, x_, y_, scale_, offset_, out_); }

  void OnOK() override { deferred_.Resolve(output_.Value()); }

 private:
  AxisTaps Hold(Napi::Object taps) {
    Napi::Int32Array first = taps.Get("first").As<Napi::Int32Array>();
    Napi::Int32Array index = taps.Get("indices").As<Napi::Int32Array>();
    Napi::Float32Array weight = taps.Get("weights").As<Napi::Float32Array>();
    for (Napi::Object held : {first.As<Napi::Object>(), index.As<Napi::Object>(), weight.As<Napi::Object>()}) {
      held_.push_back(Napi::Persistent(held));
    }
    return AxisTaps{first.Data(), index.Data(), weight.Data(), static_cast<int>(first.ElementLength()) - 1};
  }

  std::vector<Napi::ObjectReference> held_;
  const uint8_t* src_;
  int width_;
  AxisTaps x_{};
  AxisTaps y_{};
  float scale_;
  float offset_;
  Napi::Reference<Napi::Float32Array> output_;
  float* out_;
};

// Checks taps against the image before any thread reads memory with them.
void CheckTaps(Napi::Env env, const Napi::Value& value, size_t limit, const char* axis) {
  auto fail = [&](const std::string& why) {
    throw MakeError(env, {"ERR_RESAMPLE", std::string("resample: ") + axis + " taps " + why});
  };
  if (!value.IsObject()) fail("missing");
  Napi::Object taps = value.As<Napi::Object>();
  Napi::Value first = taps.Get("first"), index = taps.Get("indices"), weight = taps.Get("weights");
  if (!first.IsTypedArray() || first.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      !index.IsTypedArray() || index.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      !weight.IsTypedArray() || weight.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    fail("must be {first: Int32Array, indices: Int32Array, weights: Float32Array}");
  }
  Napi::Int32Array f = first.As<Napi::Int32Array>();
  Napi::Int32Array i = index.As<Napi::Int32Array>();
  if (f.ElementLength() < 1 || i.ElementLength() != weight.As<Napi::Float32Array>().ElementLength()) fail("have mismatched lengths");
  if (f[0] != 0 || static_cast<size_t>(f[f.ElementLength() - 1]) != i.ElementLength()) fail("do not cover their indices");
  for (size_t k = 1; k < f.ElementLength(); k++) {
    if (f[k] < f[k - 1]) fail("are not in order");
  }
  for (size_t k = 0; k < i.ElementLength(); k++) {
    if (i[k] < 0 || static_cast<size_t>(i[k]) >= limit) fail("read outside the image");
  }
}

// resample(rgb: Uint8Array, width, xTaps, yTaps, scale, offset) -> Promise<Float32Array>
Napi::Value Resample(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw MakeError(env, {"ERR_RESAMPLE", "resample: the image must be a Uint8Array of RGB pixels"});
  }
  Napi::TypedArray src = info[0].As<Napi::TypedArray>();
  const int width = info[1].As<Napi::Number>().Int32Value();
  if (width <= 0 || src.ByteLength() % (static_cast<size_t>(width) * 3) != 0) {
    throw MakeError(env, {"ERR_RESAMPLE", "resample: the image length is not a whole number of RGB rows"});
  }
  const size_t height = src.ByteLength() / (static_cast<size_t>(width) * 3);
  CheckTaps(env, info[2], static_cast<size_t>(width), "x");
  CheckTaps(env, info[3], height, "y");
  auto* worker = new ResampleWorker(env, src, width, info[2].As<Napi::Object>(), info[3].As<Napi::Object>(),
                                    info[4].As<Napi::Number>().FloatValue(), info[5].As<Napi::Number>().FloatValue());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Interpreter::ResizeInput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<Engine> engine = Live(env);
  int index = info[0].As<Napi::Number>().Int32Value();
  Napi::Array shape = info[1].As<Napi::Array>();
  std::vector<int> dims;
  for (uint32_t i = 0; i < shape.Length(); i++) dims.push_back(shape.Get(i).As<Napi::Number>().Int32Value());
  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  auto job = std::make_unique<Job>();
  job->run = [engine, index, dims](EngineError* error) { return engine->ResizeInput(index, dims, error); };
  job->settle = [deferred](Napi::Env env, bool ok, const EngineError& error) {
    if (ok) deferred->Resolve(env.Undefined());
    else deferred->Reject(MakeError(env, error).Value());
  };
  thread_->Post(env, std::move(job));
  return deferred->Promise();
}

Napi::Value Interpreter::Invoke(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<Engine> engine = Live(env);
  if (info.Length() < 1 || !info[0].IsArray()) {
    throw MakeError(env, {"ERR_INPUT_TYPE", "invoke takes an array of typed arrays, one per model input"});
  }
  Napi::Array inputs = info[0].As<Napi::Array>();
  // Keep the input buffers alive (and so their memory in place) until the
  // job is settled; the inference thread reads them directly, without a copy.
  auto keep_alive = std::make_shared<Napi::ObjectReference>(Napi::Persistent(Napi::Object::New(env)));
  std::vector<InputView> views;
  for (uint32_t i = 0; i < inputs.Length(); i++) {
    if (!inputs.Get(i).IsTypedArray()) {
      throw MakeError(env, {"ERR_INPUT_TYPE", "input " + std::to_string(i) + " is not a typed array or Buffer"});
    }
    Napi::TypedArray array = inputs.Get(i).As<Napi::TypedArray>();
    keep_alive->Set(i, array);
    auto* base = static_cast<unsigned char*>(array.ArrayBuffer().Data());
    views.push_back({base + array.ByteOffset(), array.ByteLength()});
  }
  auto deferred = std::make_shared<Napi::Promise::Deferred>(env);
  auto outputs = std::make_shared<std::vector<std::vector<unsigned char>>>();
  auto job = std::make_unique<Job>();
  job->run = [engine, views, outputs](EngineError* error) { return engine->Invoke(views, outputs.get(), error); };
  job->settle = [deferred, outputs, keep_alive](Napi::Env env, bool ok, const EngineError& error) {
    keep_alive->Reset();
    if (!ok) return deferred->Reject(MakeError(env, error).Value());
    Napi::Array results = Napi::Array::New(env, outputs->size());
    for (size_t i = 0; i < outputs->size(); i++) {
      // Hand the bytes over without another copy: the ArrayBuffer owns them.
      auto* bytes = new std::vector<unsigned char>(std::move((*outputs)[i]));
      Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
          env, bytes->data(), bytes->size(),
          [](Napi::Env, void*, std::vector<unsigned char>* owned) { delete owned; }, bytes);
      results.Set(i, buffer);
    }
    deferred->Resolve(results);
  };
  thread_->Post(env, std::move(job));
  return deferred->Promise();
}

namespace {

// open(modelPathOrBuffer, options) -> Promise<Interpreter>
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  std::vector<char> bytes;
  if (info[0].IsString()) {
    path = info[0].As<Napi::String>().Utf8Value();
  } else if (info[0].IsTypedArray()) {
    Napi::TypedArray array = info[0].As<Napi::TypedArray>();
    auto* base = static_cast<char*>(array.ArrayBuffer().Data()) + array.ByteOffset();
    bytes.assign(base, base + array.ByteLength());  // TFLite keeps pointers into it
  } else {
    throw MakeError(env, {"ERR_MODEL_INVALID", "a model is a file path or a Buffer"});
  }
  Napi::Object options = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  auto* worker = new OpenWorker(env, std::move(path), std::move(bytes), ReadOptions(options));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// edgetpuProbe(libraryPath) -> { loaded, error?, version?, devices: [{type, path}] }
// Synchronous: only the Edge TPU child process calls it.
Napi::Value EdgeTpuProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  Napi::Object result = Napi::Object::New(env);
  std::string error;
  const EdgeTpuLibrary* library = LoadEdgeTpu(path, &error);
  result.Set("loaded", Napi::Boolean::New(env, library != nullptr));
  Napi::Array devices = Napi::Array::New(env);
  if (library == nullptr) {
    result.Set("error", Napi::String::New(env, error));
  } else {
    if (library->version != nullptr) result.Set("version", Napi::String::New(env, library->version()));
    std::vector<EdgeTpuDevice> found = ListEdgeTpuDevices(library);
    for (size_t i = 0; i < found.size(); i++) {
      Napi::Object device = Napi::Object::New(env);
      device.Set("type", Napi::String::New(env, found[i].type == kEdgeTpuUsb ? "usb" : "pci"));
      device.Set("path", Napi::String::New(env, found[i].path));
      devices.Set(i, device);
    }
  }
  result.Set("devices", devices);
  return result;
}

Napi::Value TfliteVersion(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), TfLiteVersion()); }

// An advisory lock on an open file (flock, never blocking): the gallery
// serialises writers across processes with it. The kernel drops the lock when
// the holder dies, however it dies, so there is never a stale lock to guess
// about. Returns false when another open file holds it.
Napi::Value TryLockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "tryLockFile(fd) needs a file descriptor");
  const int fd = info[0].As<Napi::Number>().Int32Value();
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) return Napi::Boolean::New(env, true);
  if (errno == EWOULDBLOCK || errno == EINTR) return Napi::Boolean::New(env, false);
  Napi::Error error = Napi::Error::New(env, std::string("flock failed: ") + strerror(errno));
  error.Set("errno", Napi::Number::New(env, errno));
  throw error;
}

Napi::Value UnlockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "unlockFile(fd) needs a file descriptor");
  flock(info[0].As<Napi::Number>().Int32Value(), LOCK_UN);
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function interpreter = Interpreter::Define(env);
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(interpreter)));
  exports.Set("Interpreter", interpreter);
  exports.Set("open", Napi::Function::New(env, Open));
  exports.Set("edgetpuProbe", Napi::Function::New(env, EdgeTpuProbe));
  exports.Set("tfliteVersion", Napi::Function::New(env, TfliteVersion));
  exports.Set("resample", Napi::Function::New(env, Resample));
  exports.Set("tryLockFile", Napi::Function::New(env, TryLockFile));
  exports.Set("unlockFile", Napi::Function::New(env, UnlockFile));
  return exports;
}

}  // namespace

}  // namespace coral

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return coral::Init(env, exports); }

NODE_API_MODULE(coral_face_native, InitModule)

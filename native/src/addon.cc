// Node-API surface of the runtime. Everything that can take time (opening a
// model, resizing, invoking) runs on the libuv thread pool through
// AsyncWorkers and settles a Promise; the main thread only validates and
// copies results out.
#include <napi.h>

#include <memory>

#include "edgetpu.h"
#include "engine.h"

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
    }
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
    // Workers in flight hold their own reference; the engine is freed when
    // the last of them finishes.
    engine_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<Engine> engine_;
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

class ResizeWorker : public PromiseWorker {
 public:
  ResizeWorker(Napi::Env env, std::shared_ptr<Engine> engine, int index, std::vector<int> dims)
      : PromiseWorker(env), engine_(std::move(engine)), index_(index), dims_(std::move(dims)) {}
  void Execute() override {
    EngineError error;
    if (!engine_->ResizeInput(index_, dims_, &error)) Fail(error);
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }

 private:
  std::shared_ptr<Engine> engine_;
  int index_;
  std::vector<int> dims_;
};

class InvokeWorker : public PromiseWorker {
 public:
  InvokeWorker(Napi::Env env, std::shared_ptr<Engine> engine, const Napi::Array& inputs)
      : PromiseWorker(env), engine_(std::move(engine)) {
    // Keep the input buffers alive (and so their memory in place) until the
    // worker is done; the worker thread reads them directly, without a copy.
    keep_alive_ = Napi::Persistent(Napi::Object::New(env));
    for (uint32_t i = 0; i < inputs.Length(); i++) {
      Napi::TypedArray array = inputs.Get(i).As<Napi::TypedArray>();
      keep_alive_.Set(i, array);
      auto* base = static_cast<unsigned char*>(array.ArrayBuffer().Data());
      views_.push_back({base + array.ByteOffset(), array.ByteLength()});
    }
  }

  void Execute() override {
    EngineError error;
    if (!engine_->Invoke(views_, &outputs_, &error)) Fail(error);
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Array results = Napi::Array::New(env, outputs_.size());
    for (size_t i = 0; i < outputs_.size(); i++) {
      // Hand the bytes over without another copy: the ArrayBuffer owns them.
      auto* bytes = new std::vector<unsigned char>(std::move(outputs_[i]));
      Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
          env, bytes->data(), bytes->size(),
          [](Napi::Env, void*, std::vector<unsigned char>* owned) { delete owned; }, bytes);
      results.Set(i, buffer);
    }
    deferred_.Resolve(results);
  }

 private:
  std::shared_ptr<Engine> engine_;
  Napi::ObjectReference keep_alive_;
  std::vector<InputView> views_;
  std::vector<std::vector<unsigned char>> outputs_;
};

Napi::Value Interpreter::ResizeInput(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<Engine> engine = Live(env);
  int index = info[0].As<Napi::Number>().Int32Value();
  Napi::Array shape = info[1].As<Napi::Array>();
  std::vector<int> dims;
  for (uint32_t i = 0; i < shape.Length(); i++) dims.push_back(shape.Get(i).As<Napi::Number>().Int32Value());
  auto* worker = new ResizeWorker(env, engine, index, std::move(dims));
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Interpreter::Invoke(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<Engine> engine = Live(env);
  if (info.Length() < 1 || !info[0].IsArray()) {
    throw MakeError(env, {"ERR_INPUT_TYPE", "invoke takes an array of typed arrays, one per model input"});
  }
  Napi::Array inputs = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < inputs.Length(); i++) {
    if (!inputs.Get(i).IsTypedArray()) {
      throw MakeError(env, {"ERR_INPUT_TYPE", "input " + std::to_string(i) + " is not a typed array or Buffer"});
    }
  }
  auto* worker = new InvokeWorker(env, engine, inputs);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function interpreter = Interpreter::Define(env);
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(interpreter)));
  exports.Set("Interpreter", interpreter);
  exports.Set("open", Napi::Function::New(env, Open));
  exports.Set("edgetpuProbe", Napi::Function::New(env, EdgeTpuProbe));
  exports.Set("tfliteVersion", Napi::Function::New(env, TfliteVersion));
  return exports;
}

}  // namespace

}  // namespace coral

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return coral::Init(env, exports); }

NODE_API_MODULE(coral_face_native, InitModule)

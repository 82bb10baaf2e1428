#include "edgetpu.h"

#include <dlfcn.h>

#include <map>
#include <memory>
#include <mutex>

namespace coral {

namespace {
std::mutex g_mutex;
std::map<std::string, std::unique_ptr<EdgeTpuLibrary>> g_libraries;

template <typename Fn>
bool Bind(void* handle, const char* name, Fn* slot, std::string* error) {
  *slot = reinterpret_cast<Fn>(dlsym(handle, name));
  if (*slot == nullptr) {
    *error = std::string("symbol ") + name + " missing: not a libedgetpu library";
    return false;
  }
  return true;
}
}  // namespace

const EdgeTpuLibrary* LoadEdgeTpu(const std::string& path, std::string* error) {
  std::lock_guard<std::mutex> lock(g_mutex);
  auto found = g_libraries.find(path);
  if (found != g_libraries.end()) return found->second.get();

  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* reason = dlerror();
    *error = reason != nullptr ? reason : "dlopen failed";
    return nullptr;
  }
  auto library = std::make_unique<EdgeTpuLibrary>();
  library->path = path;
  if (!Bind(handle, "edgetpu_list_devices", &library->list_devices, error) ||
      !Bind(handle, "edgetpu_free_devices", &library->free_devices, error) ||
      !Bind(handle, "edgetpu_create_delegate", &library->create_delegate, error) ||
      !Bind(handle, "edgetpu_free_delegate", &library->free_delegate, error)) {
    dlclose(handle);
    return nullptr;
  }
  // Optional in the sense that we can run without them.
  library->verbosity = reinterpret_cast<void (*)(int)>(dlsym(handle, "edgetpu_verbosity"));
  library->version = reinterpret_cast<const char* (*)()>(dlsym(handle, "edgetpu_version"));
  const EdgeTpuLibrary* result = library.get();
  g_libraries[path] = std::move(library);
  return result;
}

std::vector<EdgeTpuDevice> ListEdgeTpuDevices(const EdgeTpuLibrary* library) {
  std::vector<EdgeTpuDevice> devices;
  size_t count = 0;  // never pass NULL: the real library CHECKs it and aborts
  EdgeTpuDeviceC* list = library->list_devices(&count);
  for (size_t i = 0; list != nullptr && i < count; i++) {
    devices.push_back({list[i].type, list[i].path != nullptr ? list[i].path : ""});
  }
  if (list != nullptr) library->free_devices(list);
  return devices;
}

}  // namespace coral

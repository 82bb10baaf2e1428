// The libedgetpu C API (tflite/public/edgetpu_c.h), loaded with dlopen at run
// time so that the package loads and runs on the CPU where the library is
// absent. Only the supervised child process calls into it: libedgetpu aborts
// the process on some USB errors.
#pragma once

#include <string>
#include <vector>

#include "tflite_extra.h"

namespace coral {

enum EdgeTpuDeviceType { kEdgeTpuPci = 0, kEdgeTpuUsb = 1 };

struct EdgeTpuDeviceC {
  int type;  // enum edgetpu_device_type
  const char* path;
};

struct EdgeTpuOptionC {
  const char* name;
  const char* value;
};

struct EdgeTpuLibrary {
  std::string path;
  EdgeTpuDeviceC* (*list_devices)(size_t* num_devices) = nullptr;
  void (*free_devices)(EdgeTpuDeviceC* devices) = nullptr;
  TfLiteDelegate* (*create_delegate)(int type, const char* name, const EdgeTpuOptionC* options,
                                     size_t num_options) = nullptr;
  void (*free_delegate)(TfLiteDelegate* delegate) = nullptr;
  void (*verbosity)(int level) = nullptr;
  const char* (*version)() = nullptr;
};

struct EdgeTpuDevice {
  int type;
  std::string path;
};

// Loads (once per path, never unloaded: the library keeps threads) or returns
// nullptr with the dlopen/dlsym error in *error.
const EdgeTpuLibrary* LoadEdgeTpu(const std::string& path, std::string* error);
std::vector<EdgeTpuDevice> ListEdgeTpuDevices(const EdgeTpuLibrary* library);

}  // namespace coral

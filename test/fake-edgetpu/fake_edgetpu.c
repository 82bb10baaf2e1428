// A stand-in for Coral's libedgetpu.so.1 (C API of tflite/public/edgetpu_c.h)
// so the runtime's device selection, option passing, delegate lifetime and
// abort supervision can be tested without hardware. Scripted by environment
// variables, read on every call so one process can change them between calls:
//
//   FAKE_EDGETPU_DEVICES      "usb:/sys/bus/usb/devices/2-1;pci:/dev/apex_0"
//                             (listed in that order; unset/empty: no devices)
//   FAKE_EDGETPU_FAIL_CREATE  "1": edgetpu_create_delegate returns NULL
//   FAKE_EDGETPU_LOG          file to append one line per call to
//   FAKE_EDGETPU_ABORT_FILE   while a delegate is alive, abort() as soon as
//                             this file exists (polled every 20 ms)
//
// The delegate claims no nodes, so models keep running on the CPU kernels.
// Built by test/helpers/fake-edgetpu.ts; it needs only the TFLite headers, not
// the TFLite library (the host process provides the interpreter).

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tensorflow/lite/c/common.h"

#define FAKE_EXPORT __attribute__((visibility("default")))

enum edgetpu_device_type { EDGETPU_APEX_PCI = 0, EDGETPU_APEX_USB = 1 };

struct edgetpu_device {
  enum edgetpu_device_type type;
  const char* path;
};

struct edgetpu_option {
  const char* name;
  const char* value;
};

// ---------------------------------------------------------------- logging --

static const char* type_name(int type) {
  switch (type) {
    case EDGETPU_APEX_USB:
      return "usb";
    case EDGETPU_APEX_PCI:
      return "pci";
    default:
      return "unknown";
  }
}

// One write() per line on an O_APPEND descriptor, so lines from concurrent
// threads or processes (a supervisor and its child) never interleave.
static void log_line(const char* fmt, ...) {
  const char* file = getenv("FAKE_EDGETPU_LOG");
  if (file == NULL || file[0] == '\0') return;
  char line[2048];
  va_list args;
  va_start(args, fmt);
  int n = vsnprintf(line, sizeof(line) - 1, fmt, args);
  va_end(args);
  if (n < 0) return;
  if ((size_t)n > sizeof(line) - 2) n = (int)sizeof(line) - 2;
  line[n++] = '\n';
  int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t ignored = write(fd, line, (size_t)n);
  (void)ignored;
  close(fd);
}

// ---------------------------------------------------------------- devices --

static int parse_type(const char* s, size_t len, enum edgetpu_device_type* out) {
  if (len == 3 && strncmp(s, "usb", 3) == 0) {
    *out = EDGETPU_APEX_USB;
    return 1;
  }
  if (len == 3 && strncmp(s, "pci", 3) == 0) {
    *out = EDGETPU_APEX_PCI;
    return 1;
  }
  return 0;
}

// Calls visit(type, path, path_len, ctx) for each well-formed "type:path"
// entry of FAKE_EDGETPU_DEVICES, in order. Malformed entries are skipped so a
// typo shows up as a missing device rather than a crash.
typedef void (*device_visitor)(enum edgetpu_device_type, const char*, size_t, void*);

static void for_each_device(device_visitor visit, void* ctx) {
  const char* spec = getenv("FAKE_EDGETPU_DEVICES");
  if (spec == NULL) return;
  const char* entry = spec;
  while (*entry != '\0') {
    const char* end = strchr(entry, ';');
    size_t len = end != NULL ? (size_t)(end - entry) : strlen(entry);
    const char* colon = memchr(entry, ':', len);
    enum edgetpu_device_type type;
    if (colon != NULL && colon + 1 < entry + len &&
        parse_type(entry, (size_t)(colon - entry), &type)) {
      visit(type, colon + 1, (size_t)(entry + len - colon - 1), ctx);
    }
    if (end == NULL) break;
    entry = end + 1;
  }
}

struct count_ctx {
  size_t count;
  size_t path_bytes;
};

static void count_device(enum edgetpu_device_type type, const char* path, size_t len, void* p) {
  (void)type;
  (void)path;
  struct count_ctx* ctx = p;
  ctx->count++;
  ctx->path_bytes += len + 1;
}

struct fill_ctx {
  struct edgetpu_device* devices;
  char* strings;
  size_t index;
};

static void fill_device(enum edgetpu_device_type type, const char* path, size_t len, void* p) {
  struct fill_ctx* ctx = p;
  memcpy(ctx->strings, path, len);
  ctx->strings[len] = '\0';
  ctx->devices[ctx->index].type = type;
  ctx->devices[ctx->index].path = ctx->strings;
  ctx->strings += len + 1;
  ctx->index++;
}

// The array and its path strings share one allocation, so callers release
// everything with the single edgetpu_free_devices() the real API offers.
FAKE_EXPORT struct edgetpu_device* edgetpu_list_devices(size_t* num_devices) {
  struct count_ctx counted = {0, 0};
  for_each_device(count_device, &counted);
  struct edgetpu_device* devices = NULL;
  if (counted.count > 0) {
    devices = malloc(counted.count * sizeof(*devices) + counted.path_bytes);
    if (devices != NULL) {
      struct fill_ctx ctx = {devices, (char*)(devices + counted.count), 0};
      for_each_device(fill_device, &ctx);
    } else {
      counted.count = 0;
    }
  }
  if (num_devices != NULL) *num_devices = counted.count;
  log_line("list %zu", counted.count);
  return devices;
}

FAKE_EXPORT void edgetpu_free_devices(struct edgetpu_device* dev) {
  log_line("free_devices");
  free(dev);
}

struct find_ctx {
  enum edgetpu_device_type type;
  const char* name;  // NULL or "" selects the first device of the type
  char* found;       // malloc'd path of the selected device
};

static void find_device(enum edgetpu_device_type type, const char* path, size_t len, void* p) {
  struct find_ctx* ctx = p;
  if (ctx->found != NULL || type != ctx->type) return;
  int wanted = ctx->name == NULL || ctx->name[0] == '\0' ||
               (strlen(ctx->name) == len && strncmp(ctx->name, path, len) == 0);
  if (!wanted) return;
  ctx->found = malloc(len + 1);
  if (ctx->found == NULL) return;
  memcpy(ctx->found, path, len);
  ctx->found[len] = '\0';
}

// ---------------------------------------------------------------- options --

static int one_of(const char* value, const char* const* allowed) {
  for (; *allowed != NULL; allowed++) {
    if (strcmp(value, *allowed) == 0) return 1;
  }
  return 0;
}

// Mirrors the documented option values; the real library refuses to open a
// device with an invalid value, so the runtime must not send one. Unknown
// option names are accepted (and logged) so the log shows what was sent.
static int option_valid(const struct edgetpu_option* option) {
  static const char* const performance[] = {"Low", "Medium", "High", "Max", NULL};
  static const char* const booleans[] = {"True", "False", NULL};
  if (option->name == NULL || option->value == NULL) return 0;
  if (strcmp(option->name, "Performance") == 0) return one_of(option->value, performance);
  if (strcmp(option->name, "Usb.AlwaysDfu") == 0) return one_of(option->value, booleans);
  if (strcmp(option->name, "Usb.MaxBulkInQueueLength") == 0) {
    char* end = NULL;
    errno = 0;
    long n = strtol(option->value, &end, 10);
    return errno == 0 && end != option->value && *end == '\0' && n >= 0 && n <= 255;
  }
  return 1;
}

// Appends " Name=Value" for each option; truncates quietly since it is only
// diagnostic text.
static void format_options(char* out, size_t size, const struct edgetpu_option* options,
                           size_t num_options) {
  size_t used = 0;
  out[0] = '\0';
  for (size_t i = 0; i < num_options && options != NULL && used < size; i++) {
    int n = snprintf(out + used, size - used, " %s=%s",
                     options[i].name != NULL ? options[i].name : "(null)",
                     options[i].value != NULL ? options[i].value : "(null)");
    if (n < 0) break;
    used += (size_t)n;
  }
}

// ---------------------------------------------------------- abort watcher --

// One watcher thread serves all live delegates: it exists only while at
// least one delegate is alive, which is when the real library talks to the
// device and can LOG(FATAL). Stopping it on the last free also makes the
// library safe to dlclose afterwards.
static pthread_mutex_t watch_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_cond = PTHREAD_COND_INITIALIZER;
static pthread_t watch_thread;
static int watch_running = 0;
// Bumped to stop the current watcher; a per-thread stop flag would be reset by
// a create that starts the next watcher before the old one has woken up.
static uintptr_t watch_generation = 0;
static size_t live_delegates = 0;
static char* watch_file = NULL;

static void* watch_main(void* arg) {
  uintptr_t generation = (uintptr_t)arg;
  pthread_mutex_lock(&watch_mutex);
  while (generation == watch_generation) {
    if (watch_file != NULL && access(watch_file, F_OK) == 0) {
      pthread_mutex_unlock(&watch_mutex);
      log_line("abort file=%s", watch_file);
      abort();
    }
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_nsec += 20 * 1000 * 1000;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec += 1;
      deadline.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&watch_cond, &watch_mutex, &deadline);
  }
  pthread_mutex_unlock(&watch_mutex);
  return NULL;
}

static void delegate_opened(void) {
  const char* file = getenv("FAKE_EDGETPU_ABORT_FILE");
  pthread_mutex_lock(&watch_mutex);
  live_delegates++;
  // The file named at the latest create wins, like a fresh device session.
  if (file != NULL && file[0] != '\0') {
    char* copy = strdup(file);
    if (copy != NULL) {
      free(watch_file);
      watch_file = copy;
    }
  }
  if (watch_file != NULL && !watch_running) {
    watch_generation++;
    if (pthread_create(&watch_thread, NULL, watch_main, (void*)watch_generation) == 0) {
      watch_running = 1;
    }
  }
  pthread_mutex_unlock(&watch_mutex);
}

static void delegate_closed(void) {
  int join = 0;
  pthread_t stopping;
  pthread_mutex_lock(&watch_mutex);
  if (live_delegates > 0) live_delegates--;
  if (live_delegates == 0 && watch_running) {
    watch_generation++;
    watch_running = 0;
    join = 1;
    // Copied under the lock: a create racing with us may start a new watcher.
    stopping = watch_thread;
    pthread_cond_broadcast(&watch_cond);
  }
  pthread_mutex_unlock(&watch_mutex);
  if (join) pthread_join(stopping, NULL);
  pthread_mutex_lock(&watch_mutex);
  if (live_delegates == 0 && !watch_running) {
    free(watch_file);
    watch_file = NULL;
  }
  pthread_mutex_unlock(&watch_mutex);
}

// --------------------------------------------------------------- delegate --

// Tags data_ so edgetpu_free_delegate can refuse pointers it did not create
// instead of corrupting the heap in a test.
#define FAKE_DELEGATE_MAGIC 0x46414b45u /* "FAKE" */

struct fake_delegate {
  TfLiteDelegate base;  // first, so TfLiteDelegate* and fake_delegate* convert
  uint32_t magic;
  enum edgetpu_device_type type;
  char* path;
};

// Claims nothing: the interpreter keeps every node on its own kernels, but
// the log still proves the delegate was attached to an interpreter.
static TfLiteStatus fake_prepare(TfLiteContext* context, TfLiteDelegate* delegate) {
  (void)context;
  struct fake_delegate* fake = delegate->data_;
  log_line("prepare type=%s path=%s", type_name(fake->type), fake->path);
  return kTfLiteOk;
}

FAKE_EXPORT TfLiteDelegate* edgetpu_create_delegate(enum edgetpu_device_type type,
                                                    const char* name,
                                                    const struct edgetpu_option* options,
                                                    size_t num_options) {
  char opts[1024];
  format_options(opts, sizeof(opts), options, num_options);
  const char* requested = name != NULL ? name : "";

  const char* fail = getenv("FAKE_EDGETPU_FAIL_CREATE");
  if (fail != NULL && strcmp(fail, "1") == 0) {
    log_line("create_failed type=%s name=%s reason=fail_create%s", type_name(type), requested,
             opts);
    return NULL;
  }
  for (size_t i = 0; i < num_options && options != NULL; i++) {
    if (!option_valid(&options[i])) {
      log_line("create_failed type=%s name=%s reason=bad_option%s", type_name(type), requested,
               opts);
      return NULL;
    }
  }
  struct find_ctx ctx = {type, name, NULL};
  if (type == EDGETPU_APEX_USB || type == EDGETPU_APEX_PCI) for_each_device(find_device, &ctx);
  if (ctx.found == NULL) {
    log_line("create_failed type=%s name=%s reason=no_device%s", type_name(type), requested,
             opts);
    return NULL;
  }

  struct fake_delegate* fake = calloc(1, sizeof(*fake));
  if (fake == NULL) {
    free(ctx.found);
    return NULL;
  }
  // Same defaults as TfLiteDelegateCreate() (all callbacks NULL, no flags),
  // set by hand so this library needs no symbol from libtensorflowlite_c.
  fake->base.data_ = fake;
  fake->base.Prepare = fake_prepare;
  fake->base.CopyFromBufferHandle = NULL;
  fake->base.CopyToBufferHandle = NULL;
  fake->base.FreeBufferHandle = NULL;
  fake->base.flags = kTfLiteDelegateFlagsNone;
  fake->magic = FAKE_DELEGATE_MAGIC;
  fake->type = type;
  fake->path = ctx.found;

  log_line("create type=%s path=%s%s", type_name(type), fake->path, opts);
  delegate_opened();
  return &fake->base;
}

FAKE_EXPORT void edgetpu_free_delegate(TfLiteDelegate* delegate) {
  if (delegate == NULL) return;
  struct fake_delegate* fake = delegate->data_;
  if (fake == NULL || fake != (struct fake_delegate*)delegate || fake->magic != FAKE_DELEGATE_MAGIC) {
    log_line("free_invalid");
    return;
  }
  log_line("free type=%s path=%s", type_name(fake->type), fake->path);
  fake->magic = 0;
  free(fake->path);
  free(fake);
  delegate_closed();
}

FAKE_EXPORT void edgetpu_verbosity(int verbosity) { log_line("verbosity %d", verbosity); }

FAKE_EXPORT const char* edgetpu_version(void) {
  log_line("version");
  return "BuildLabel(fake), RuntimeVersion(14)";
}

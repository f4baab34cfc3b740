// engine/storage.h: a refcounted block of device memory. Tensors are views over one Storage.
// Invariant: `data` was obtained from the backend of `device` and is released through it.
#pragma once
#include <cstddef>
#include <memory>

#include "engine/device.h"

namespace polyhead {

struct Storage {
  void* data = nullptr;
  size_t nbytes = 0;
  Device device;
  bool owned = true;  // false: memory borrowed from elsewhere (not freed here)
  // Page-locked host memory (device is the CPU) obtained from the backend of `pinned_by`, which
  // frees it; host-to-device copies from it need not wait (Tensor::pin_memory()).
  bool pinned = false;
  Device pinned_by;
  Storage(size_t nbytes, Device d);
  Storage(void* borrowed, size_t nbytes, Device d);  // non-owning
  // nbytes of page-locked host memory from the backend of `accel`; nullptr when that backend
  // cannot provide it (no CUDA in this build or on this machine).
  static std::shared_ptr<Storage> pinned_host(size_t nbytes, Device accel);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

using StoragePtr = std::shared_ptr<Storage>;

}  // namespace polyhead

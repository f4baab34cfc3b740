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
  Storage(size_t nbytes, Device d);
  Storage(void* borrowed, size_t nbytes, Device d);  // non-owning
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

using StoragePtr = std::shared_ptr<Storage>;

}  // namespace polyhead

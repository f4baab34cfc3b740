// demos/export_multimnist.cpp: writes the exact MultiMNIST arrays, run configuration and initial
// LeNet-HPS parameters that `polyhead train` / `polyhead compare` use for a compare config, so that
// an independent implementation (scripts/reference/torch_multimnist.py) can train the same model
// on the same data and its accuracy can be set beside Polyhead's.
//
//   build/export_multimnist --config demos/multimnist_compare.json [--full] --out DIR
//
// DIR receives (all written atomically):
//   multimnist.safetensors  train_x (n, 1, 36, 36) f32, train_y0 / train_y1 (n) i64, test_x,
//                           test_y0, test_y1: the arrays of mtl/run/datasets.h (load_run_data),
//                           bit for bit; metadata: the data description and "synthetic" (0/1)
//   init.safetensors        the model's parameters right after construction, in the order and
//                           with the names of named_parameters(), as a run with this config's
//                           seed starts from (manual_seed(seed), then the zoo's lenet_hps)
//   order.safetensors       e00, e01, ...: the training loader's example order in every epoch for
//                           the config's seed (the loader's RandomSampler), i64
//   run_config.json         the resolved run configuration (base, plus the "full" overrides with
//                           --full) with method "ew": `polyhead train --config` accepts it
// The file names are fixed so the reference script finds them. Exit status 2 on a usage error.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "data/dataset.h"
#include "data/sampler.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "mtl/run/config.h"
#include "mtl/run/datasets.h"
#include "mtl/run/files.h"
#include "mtl/zoo.h"

using namespace polyhead;

namespace {

int usage(const char* msg) {
  std::fprintf(stderr,
               "export_multimnist: %s\nusage: export_multimnist --config FILE [--full] --out DIR\n"
               "  writes DIR/multimnist.safetensors, DIR/init.safetensors, DIR/order.safetensors and DIR/run_config.json\n",
               msg);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config, out;
  bool full = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) config = argv[++i];
    else if (a == "--out" && i + 1 < argc) out = argv[++i];
    else if (a == "--full") full = true;
    else if (a == "--help" || a == "-h") return usage("help"), 0;
    else return usage(("unknown or incomplete argument '" + a + "'").c_str());
  }
  if (config.empty() || out.empty()) return usage("--config and --out are required");
  try {
    run::CompareConfig cc = run::compare_config_from_json(run::read_json_file(config));
    run::RunConfig cfg = full ? run::apply_full(cc) : cc.base;
    cfg.method = "ew";
    cfg.task.clear();
    cfg.method_options.clear();
    run::validate(cfg);
    if (cfg.model != "lenet" || cfg.arch != "hps")
      return usage(("the reference covers the LeNet-HPS model only; the config gives " + cfg.model + "-" + cfg.arch).c_str());

    run::RunData d = run::load_run_data(cfg);
    if (!d.warning.empty()) std::cerr << "\n" << d.warning << "\n\n";
    auto* train = dynamic_cast<const data::TensorDataset*>(d.train.get());
    auto* test = dynamic_cast<const data::TensorDataset*>(d.test.get());
    if (!train || !test) throw std::runtime_error("the MultiMNIST splits are not in-memory datasets");

    std::filesystem::create_directories(out);
    std::map<std::string, Tensor> arrays;
    for (const char* f : {"x", "y0", "y1"}) {
      arrays[std::string("train_") + f] = train->tensor(f);
      arrays[std::string("test_") + f] = test->tensor(f);
    }
    save_safetensors(run::path_join(out, "multimnist.safetensors"), arrays,
                     {{"description", d.description}, {"synthetic", d.synthetic ? "1" : "0"}});

    // The same construction order as a run: the data first (it draws nothing from the default
    // generator), then manual_seed(seed) and the model.
    manual_seed(cfg.seed);
    auto model = mtl::zoo::lenet_hps(int(d.tasks.size()), d.classes);
    std::map<std::string, Tensor> init;
    std::string order;
    int idx = 0;
    for (auto& [name, v] : model->named_parameters()) {
      char key[16];
      std::snprintf(key, sizeof(key), "p%02d", idx++);
      init[key] = v.data();
      order += (order.empty() ? "" : ",") + name;
    }
    save_safetensors(run::path_join(out, "init.safetensors"), init, {{"names", order}, {"seed", std::to_string(cfg.seed)}});

    // The loader's order (data::DataLoader with shuffle draws from a RandomSampler seeded with the
    // run seed, one permutation per epoch).
    data::RandomSampler sampler(train->size(), cfg.seed);
    std::map<std::string, Tensor> order_t;
    for (int e = 0; e < cfg.epochs; ++e) {
      char key[16];
      std::snprintf(key, sizeof(key), "e%02d", e);
      order_t[key] = Tensor::from_vector(sampler.indices(uint64_t(e)));
    }
    save_safetensors(run::path_join(out, "order.safetensors"), order_t, {{"seed", std::to_string(cfg.seed)}});

    run::write_text_atomic(run::path_join(out, "run_config.json"), run::to_json(cfg).dump(2) + "\n");
    std::printf("export_multimnist: %s -> %s (%lld parameter tensors; %s)\n", d.description.c_str(), out.c_str(),
                (long long)init.size(), full ? "full setting" : "short setting");
    return 0;
  } catch (const run::UsageError& e) {
    return usage(e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "export_multimnist: error: %s\n", e.what());
    return 1;
  }
}

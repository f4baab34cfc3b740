// tests/layers/test_checkpoint.cpp: a checkpoint resumes training bit-identically; a corrupt,
// truncated or mismatched checkpoint is an error that leaves the module and optimizer unchanged.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "engine/safetensors.h"
#include "layers/checkpoint.h"
#include "layers/module.h"
#include "layers/optim/adam.h"
#include "layers/optim/sgd.h"

using namespace polyhead;
using polyhead::ag::Variable;
namespace fs = std::filesystem;

namespace {

struct Part : nn::Module {
  Part(int64_t n, double start, DType dt) {
    register_parameter("w", Tensor::arange(start, start + double(n), 1.0, dt).reshape({n}));
    register_buffer("running", Tensor::full({2}, start, dt));
  }
};
struct Model : nn::Module {
  explicit Model(double start = 0.25, int64_t head = 3, DType dt = DType::f32) {
    register_module("trunk", std::make_shared<Part>(4, start, dt));
    register_module("head", std::make_shared<Part>(head, -start, dt));
    register_buffer("count", Tensor::scalar(7, DType::i64));
  }
};

// Gradients of 0.5 * sum (i + 1) p_i^2 (deterministic, parameter dependent).
void set_grads(nn::Module& m) {
  int64_t i0 = 0;
  for (const auto& v : m.parameters()) {
    std::vector<double> p = v.data().to_vector<double>();
    for (size_t j = 0; j < p.size(); ++j) p[j] *= double(i0 + int64_t(j) + 1);
    i0 += int64_t(p.size());
    Tensor dst = v.grad();
    dst.copy_(Tensor::from_vector(p, v.shape()).to(v.dtype()));
  }
}

void train(nn::Module& m, optim::Optimizer& opt, int steps) {
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    set_grads(m);
    opt.step();
  }
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  if (a.numel() == 0) return true;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.raw(), cb.raw(), size_t(ca.numel()) * ca.itemsize()) == 0;
}

bool same_state(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, t] : a)
    if (!b.count(k) || !same_bits(t, b.at(k))) return false;
  return true;
}

struct TempDir {
  fs::path dir;
  TempDir() {
    static int n = 0;
    dir = fs::temp_directory_path() / ("polyhead_ckpt_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string operator/(const std::string& name) const { return (dir / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

}  // namespace

TEST_CASE("checkpoint: a round trip resumes training identically") {
  TempDir td;
  for (bool flat : {true, false}) {
    CAPTURE(flat);
    auto a = std::make_shared<Model>();
    std::unique_ptr<optim::Optimizer> oa =
        flat ? std::make_unique<optim::Adam>(*a, optim::AdamOptions(0.01).weight_decay(0.01))
             : std::make_unique<optim::Adam>(a->parameters(), optim::AdamOptions(0.01).weight_decay(0.01));
    if (!flat)
      for (auto& v : a->parameters()) Variable(v).set_grad(Tensor::zeros(v.shape(), v.dtype()));
    train(*a, *oa, 3);
    a->buffer("count").fill_(11);
    oa->set_lr(0.005);
    const std::string path = td / (flat ? "flat.ckpt" : "plain.ckpt");
    const auto saved_model = a->state_dict();
    nn::save_checkpoint(path, *a, *oa, {{"rng_offset", Tensor::scalar(1234, DType::i64)}},
                        {{"epoch", "3"}, {"method", "famo"}});

    auto b = std::make_shared<Model>(1.5);  // different values, same structure
    std::unique_ptr<optim::Optimizer> ob =
        flat ? std::make_unique<optim::Adam>(*b, optim::AdamOptions(0.01).weight_decay(0.01))
             : std::make_unique<optim::Adam>(b->parameters(), optim::AdamOptions(0.01).weight_decay(0.01));
    if (!flat)
      for (auto& v : b->parameters()) Variable(v).set_grad(Tensor::zeros(v.shape(), v.dtype()));
    std::map<std::string, Tensor> extra;
    std::map<std::string, std::string> meta;
    nn::load_checkpoint(path, *b, *ob, &extra, &meta);
    CHECK(same_state(b->state_dict(), a->state_dict()));
    CHECK(same_state(ob->state_dict(), oa->state_dict()));
    CHECK(ob->step_count() == 3);
    CHECK(ob->lr() == 0.005);
    CHECK(b->buffer("count").item() == 11);
    CHECK(meta == std::map<std::string, std::string>{{"epoch", "3"}, {"method", "famo"}});
    REQUIRE(extra.size() == 1);
    CHECK(extra.at("rng_offset").item() == 1234);
    if (flat) {
      CHECK(b->is_flat());  // loading copied into the flat buffer: the views still hold
      CHECK(same_bits(b->flat_parameters(), a->flat_parameters()));
    }
    train(*a, *oa, 4);
    train(*b, *ob, 4);
    CHECK(same_state(b->state_dict(), a->state_dict()));
    CHECK(same_state(ob->state_dict(), oa->state_dict()));

    // The module alone (no optimizer) also loads; its optim. entries are ignored.
    auto c = std::make_shared<Model>(2.0);
    nn::load_checkpoint(path, *c, nullptr);
    CHECK(same_state(c->state_dict(), saved_model));
  }
}

TEST_CASE("checkpoint: a bad checkpoint is an error and changes nothing") {
  TempDir td;
  auto a = std::make_shared<Model>();
  optim::SGD oa(*a, optim::SGDOptions(0.1).momentum(0.9));
  train(*a, oa, 2);
  const std::string path = td / "good.ckpt";
  nn::save_checkpoint(path, *a, oa, {}, {{"step", "2"}});
  const std::string bytes = read_bytes(path);

  auto b = std::make_shared<Model>(3.0);
  optim::SGD ob(*b, optim::SGDOptions(0.1).momentum(0.9));
  train(*b, ob, 1);
  const auto model_before = b->state_dict();
  const auto optim_before = ob.state_dict();
  auto unchanged = [&] {
    CHECK(same_state(b->state_dict(), model_before));
    CHECK(same_state(ob.state_dict(), optim_before));
    CHECK(ob.step_count() == 1);
  };
  auto expect_error = [&](const std::string& p, const char* part) {
    std::string msg;
    try {
      nn::load_checkpoint(p, *b, ob);
    } catch (const Error& e) {
      msg = e.what();
    }
    INFO(msg);
    CHECK(msg.find(part) != std::string::npos);
    unchanged();
  };

  SUBCASE("truncated at many cut points") {
    const std::string cut = td / "cut.ckpt";
    for (size_t n = 0; n < bytes.size(); n += (n < 600 ? 7 : 1)) {
      write_bytes(cut, bytes.substr(0, n));
      INFO("cut at " << n << " of " << bytes.size());
      CHECK_THROWS_AS(nn::load_checkpoint(cut, *b, ob), Error);
    }
    unchanged();
  }
  SUBCASE("damaged data length") {
    std::string bad = bytes;
    bad[0] = char(uint8_t(bad[0]) + 8);  // header length no longer matches
    write_bytes(td / "bad.ckpt", bad);
    expect_error(td / "bad.ckpt", "load_safetensors");
  }
  SUBCASE("a model of another shape") {
    auto other = std::make_shared<Model>(0.25, /*head=*/5);
    optim::SGD oo(*other, optim::SGDOptions(0.1).momentum(0.9));
    nn::save_checkpoint(td / "other.ckpt", *other, oo);
    expect_error(td / "other.ckpt", "model.head.w is f32 [5], the module has f32 [3]");
  }
  SUBCASE("a model of another dtype") {
    auto other = std::make_shared<Model>(0.25, 3, DType::f64);
    nn::save_checkpoint(td / "f64.ckpt", *other, nullptr);
    CHECK_THROWS_WITH_AS(nn::load_checkpoint(td / "f64.ckpt", *b, nullptr), doctest::Contains("f64"), Error);
    unchanged();
  }
  SUBCASE("another optimizer type") {
    auto other = std::make_shared<Model>();
    optim::Adam oo(*other, optim::AdamOptions());
    nn::save_checkpoint(td / "adam.ckpt", *other, oo);
    expect_error(td / "adam.ckpt", "holds Adam state, the optimizer is SGD");
  }
  SUBCASE("no optimizer state") {
    nn::save_checkpoint(td / "model_only.ckpt", *a, nullptr);
    expect_error(td / "model_only.ckpt", "holds no optimizer state");
  }
  SUBCASE("a valid model with a broken optimizer state: the model is not loaded either") {
    SafetensorsFile f = load_safetensors(path);
    f.tensors["optim.flat.momentum_buffer"] = Tensor::zeros({3});
    save_safetensors(td / "broken.ckpt", f.tensors, f.metadata);
    expect_error(td / "broken.ckpt", "optim.");
    expect_error(td / "broken.ckpt", "flat.momentum_buffer");
  }
  SUBCASE("missing and unexpected model keys") {
    SafetensorsFile f = load_safetensors(path);
    f.tensors.erase("model.count");
    f.tensors["model.extra_w"] = Tensor::zeros({1});
    save_safetensors(td / "keys.ckpt", f.tensors, f.metadata);
    expect_error(td / "keys.ckpt", "missing \"model.count\"");
    expect_error(td / "keys.ckpt", "unexpected \"model.extra_w\"");
  }
  SUBCASE("stray tensors and plain safetensors files") {
    SafetensorsFile f = load_safetensors(path);
    f.tensors["loose"] = Tensor::zeros({1});
    save_safetensors(td / "stray.ckpt", f.tensors, f.metadata);
    expect_error(td / "stray.ckpt", "\"loose\"");
    save_safetensors(td / "plain.safetensors", a->state_dict());
    expect_error(td / "plain.safetensors", "not a polyhead checkpoint");
    f = load_safetensors(path);
    f.metadata["polyhead.checkpoint"] = "99";
    save_safetensors(td / "future.ckpt", f.tensors, f.metadata);
    expect_error(td / "future.ckpt", "version \"99\"");
  }
  SUBCASE("saving: reserved metadata, undefined extras, failed writes keep the old file") {
    CHECK_THROWS_AS(nn::save_checkpoint(path, *a, oa, {}, {{"polyhead.checkpoint", "2"}}), Error);
    CHECK_THROWS_AS(nn::save_checkpoint(path, *a, oa, {{"x", Tensor()}}), Error);
    fs::create_directory(td / "dir.ckpt");
    CHECK_THROWS_AS(nn::save_checkpoint(td / "dir.ckpt", *a, oa), Error);
    CHECK(read_bytes(path) == bytes);
  }
}

// mtl/run/experiment.cpp: see experiment.h.
#include "mtl/run/experiment.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <sstream>

#include "data/loader.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "layers/checkpoint.h"
#include "layers/optim/adam.h"
#include "layers/optim/sgd.h"
#include "mtl/diagnostics/recorder.h"
#include "mtl/per_task_grads.h"
#include "mtl/run/datasets.h"
#include "mtl/run/diag_report.h"
#include "mtl/run/files.h"
#include "mtl/run/plot.h"
#include "mtl/run/progress.h"
#include "mtl/trainer.h"
#include "mtl/zoo.h"
#if POLYHEAD_HAVE_CUDA
#include "engine/cuda/cuda_api.h"
#endif

namespace polyhead::run {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::vector<double> RunResult::final_metric() const {
  if (epochs.empty()) return std::vector<double>(tasks.size(), std::numeric_limits<double>::quiet_NaN());
  return epochs.back().test_metric;
}

std::vector<double> RunResult::final_loss() const {
  if (epochs.empty()) return std::vector<double>(tasks.size(), std::numeric_limits<double>::quiet_NaN());
  return epochs.back().test_loss;
}

namespace {

constexpr const char* kCheckpoint = "checkpoint.safetensors";
constexpr const char* kDiagnostics = "diagnostics.jsonl";

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::cpu();
  int idx = s.size() > 5 ? std::stoi(s.substr(5)) : 0;
#if POLYHEAD_HAVE_CUDA
  cuda::init();
  if (!cuda::available()) throw std::runtime_error("--device " + s + ": no usable CUDA device (" + cuda::device_summary() + ")");
  if (idx >= cuda::device_count())
    throw std::runtime_error("--device " + s + ": only " + std::to_string(cuda::device_count()) + " CUDA device(s)");
  return Device::cuda(idx);
#else
  (void)idx;
  throw std::runtime_error("--device " + s +
                           ": this build has no CUDA backend (rebuild with the CUDA toolkit installed, "
                           "-DPOLYHEAD_CUDA=ON), or use --device cpu");
#endif
}

// The zoo model with its tasks renamed after the data set's tasks.
std::shared_ptr<mtl::MultiTaskModel> build_model(const RunConfig& c, const std::vector<std::string>& names, int classes) {
  int K = int(names.size());
  auto base = c.model == "lenet" ? mtl::zoo::lenet_hps(K, classes) : mtl::zoo::mlp_hps(K, 36 * 36, c.hidden, classes);
  auto arch = std::static_pointer_cast<mtl::Architecture>(base->arch().shared_from_this());
  std::vector<mtl::Task> tasks = base->tasks();
  for (int k = 0; k < K; ++k) tasks[size_t(k)].name = names[size_t(k)];
  base.reset();
  return std::make_shared<mtl::MultiTaskModel>(arch, std::move(tasks));
}

std::unique_ptr<optim::Optimizer> build_optimizer(const RunConfig& c, nn::Module& m) {
  if (c.optimizer == "sgd") {
    optim::SGDOptions o(c.lr);
    o.momentum(c.momentum);
    if (c.weight_decay >= 0) o.weight_decay(c.weight_decay);
    return std::make_unique<optim::SGD>(m, o);
  }
  if (c.optimizer == "adam") {
    optim::AdamOptions o(c.lr);
    if (c.weight_decay >= 0) o.weight_decay(c.weight_decay);
    return std::make_unique<optim::Adam>(m, o);
  }
  optim::AdamWOptions o(c.lr);
  if (c.weight_decay >= 0) o.weight_decay(c.weight_decay);
  return std::make_unique<optim::AdamW>(m, o);
}

Tensor u64_pair(uint64_t a, uint64_t b) {
  std::vector<int64_t> v{int64_t(a), int64_t(b)};
  return Tensor::from_vector(v);
}

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.2f%%", 100 * v);
  return b;
}

class Run {
public:
  Run(RunConfig cfg, const RunOptions& o) : cfg_(std::move(cfg)), o_(o) {
    validate(cfg_);
    log_ = o_.log ? o_.log : &std::cerr;
    device_ = parse_device(cfg_.device);
    data_ = load_run_data(cfg_);
    if (!data_.warning.empty() && !o_.quiet) *log_ << "\n" << std::string(78, '!') << "\n" << data_.warning << "\n" << std::string(78, '!') << "\n\n";
    tasks_ = run_tasks(cfg_);
    for (auto& t : tasks_)
      target_.push_back(int(std::find(data_.tasks.begin(), data_.tasks.end(), t) - data_.tasks.begin()));
    train_ds_ = data_.train;
    {
      mtl::Options mo;
      for (auto& [k, v] : cfg_.method_options) mo.set(k, v);
      needs_val_ = (mtl::make_method(trainer_method(cfg_), int(tasks_.size()), mo)->needs() & mtl::kNeedValidationLosses) != 0;
    }
    if (needs_val_) split_validation();
    manual_seed(cfg_.seed);
    model_ = build_model(cfg_, tasks_, data_.classes);
    model_->to(device_);
    model_->flatten();
    opt_ = build_optimizer(cfg_, *model_);
    mtl::TrainerOptions to;
    to.method = trainer_method(cfg_);
    for (auto& [k, v] : cfg_.method_options) to.method_options.set(k, v);
    to.seed = cfg_.seed;
    if (needs_val_) {
      to.validation_losses = [this] { return validation_losses(); };
      to.val_every = cfg_.val_every;
    }
    trainer_ = std::make_unique<mtl::Trainer>(*model_, *opt_, to);
    if (cfg_.diagnostics_every > 0) make_recorder();
    int K = int(tasks_.size());
    loss_sum_.assign(size_t(K), 0.0);
    for (int k = 0; k < K; ++k) {
      metric_names_.push_back(model_->task(k).metric_name);
      higher_.push_back(model_->task(k).higher_is_better);
    }
  }

  void start_fresh(const std::string& dir) {
    dir_ = dir;
    prepare_run_dir(dir_, o_.overwrite);
    write_text_atomic(path("config.json"), to_json(cfg_).dump(2) + "\n");
    std::error_code ec;  // --overwrite: nothing of the old run may be mistaken for this one's
    for (const char* f : {"epochs.csv", kCheckpoint, "results.md", "results.csv", kDiagnostics}) fs::remove(path(f), ec);
    fs::remove_all(path("plots"), ec);
    log_file_ = StepLog(path("steps.jsonl"), false);
    if (recorder_) diag_log_ = mtl::diag::DiagLog(path(kDiagnostics), false);
  }

  // meta_state: the checkpoint's "run_state" metadata (position, running sums, finished epochs).
  void start_resumed(const std::string& dir, const json& meta_state) {
    try {
      resume_from(dir, meta_state);
    } catch (const json::exception& e) {
      throw std::runtime_error("checkpoint '" + path(kCheckpoint) + "' has malformed run state: " + e.what());
    }
  }

private:
  void resume_from(const std::string& dir, const json& meta_state) {
    dir_ = dir;
    std::map<std::string, Tensor> extra;
    std::map<std::string, std::string> meta;
    nn::load_checkpoint(path(kCheckpoint), *model_, opt_.get(), &extra, &meta);
    std::map<std::string, Tensor> ts;
    for (auto& [k, v] : extra)
      if (k.rfind("trainer.", 0) == 0) ts[k.substr(8)] = v;
    auto need = [&](const char* k) -> const Tensor& {
      auto it = extra.find(k);
      if (it == extra.end()) throw std::runtime_error("checkpoint '" + path(kCheckpoint) + "' has no '" + k + "'; it was not written by polyhead train");
      return it->second;
    };
    Tensor rng = need("run.rng").to(DType::i64).contiguous();
    Tensor ls = need("run.loss_sum").to(DType::f64).contiguous();
    if (rng.numel() != 2 || ls.numel() != int64_t(tasks_.size()))
      throw std::runtime_error("checkpoint '" + path(kCheckpoint) + "': run state does not fit this config");
    trainer_->load_state_dict(ts);
    default_generator().set_state(uint64_t(rng.data<int64_t>()[0]), uint64_t(rng.data<int64_t>()[1]));
    loss_sum_.assign(ls.data<double>(), ls.data<double>() + ls.numel());
    std::string data_then = meta_state.value("data", std::string());
    if (data_then != data_.description)
      throw std::runtime_error("the run in '" + dir_ + "' was trained on \"" + data_then + "\" but the config now gives \"" +
                               data_.description + "\" (resume from the folder the run started in, with the same data files)");
    epoch_ = meta_state.at("epoch").get<int>();
    step_in_epoch_ = meta_state.at("step_in_epoch").get<int64_t>();
    global_step_ = meta_state.at("global_step").get<int64_t>();
    loss_count_ = meta_state.at("loss_count").get<int64_t>();
    epoch_seconds_ = meta_state.at("epoch_seconds").get<double>();
    for (auto& r : meta_state.at("history")) history_.push_back(epoch_from_json(r));
    // The step log: keep what the checkpoint covers.
    std::string sp = path("steps.jsonl");
    if (fs::exists(sp)) {
      truncate_steps_file(sp, global_step_);
      steps_ = read_steps_file(sp, tasks_, global_step_);
    }
    write_text_atomic(path("config.json"), to_json(cfg_).dump(2) + "\n");
    log_file_ = StepLog(sp, true);
    if (recorder_) {
      // Records from the checkpoint's step on are measured again (the same values: the state is the same).
      std::string dp = path(kDiagnostics);
      try {
        if (fs::exists(dp)) {
          mtl::diag::truncate_diag_file(dp, global_step_);
          diag_records_ = mtl::diag::read_diag_file(dp, tasks_);
        }
      } catch (const Error& e) {
        throw std::runtime_error(e.what());
      }
      recorder_->restore(diag_records_);
      diag_log_ = mtl::diag::DiagLog(dp, true);
    }
  }

public:
  RunResult go() {
    loop();
    RunResult r;
    r.config = cfg_;
    r.dir = dir_;
    r.tasks = tasks_;
    r.metric_names = metric_names_;
    r.higher_is_better = higher_;
    r.epochs = rows_;
    r.steps = steps_;
    r.global_step = global_step_;
    r.complete = epoch_ >= cfg_.epochs;
    r.synthetic_data = data_.synthetic;
    r.data_description = data_.description;
    r.ms_per_step = median_ms(steps_);
    r.diagnostics = diag_records_;
    r.validation_size = needs_val_ ? val_ds_->size() : 0;
    ResultTable t = run_table(r);
    write_text_atomic(path("results.md"), table_markdown(t));
    write_text_atomic(path("results.csv"), table_csv(t));
    if (o_.plots) write_run_plots(r, path("plots"));
    return r;
  }

private:
  std::string path(const std::string& f) const { return path_join(dir_, f); }

  mtl::Batch to_batch(const data::Batch& b) const {
    mtl::Batch mb;
    Tensor x = b.at("x");
    if (cfg_.model == "mlp") x = x.reshape({x.size(0), -1});
    mb.x = device_.is_cpu() ? x : x.to(device_);
    for (int t : target_) {
      Tensor y = b.at(data::target_name(t));
      mb.y.push_back(device_.is_cpu() ? y : y.to(device_));
    }
    return mb;
  }

  bool limit_reached() const { return cfg_.max_steps > 0 && global_step_ >= cfg_.max_steps; }

  // The first val_size generated training examples become the validation split; training uses the rest.
  void split_validation() {
    const int64_t n = data_.train->size();
    if (cfg_.val_size < 1 || cfg_.val_size >= n)
      throw UsageError("method '" + cfg_.method + "' needs validation losses: val_size (" + std::to_string(cfg_.val_size) +
                       ") must be between 1 and the training set size minus one (" + std::to_string(n - 1) +
                       "); set --val-size or a larger --train-size");
    std::vector<int64_t> vi, ti;
    for (int64_t i = 0; i < n; ++i) (i < cfg_.val_size ? vi : ti).push_back(i);
    val_ds_ = std::make_shared<data::SubsetDataset>(data_.train, std::move(vi));
    train_ds_ = std::make_shared<data::SubsetDataset>(data_.train, std::move(ti));
    data_.description += " (" + std::to_string(cfg_.val_size) + " of the training examples held out for validation)";
  }

  // K per-task losses on a validation batch: batch b = (global step / val_every) mod (number of
  // batches) of the validation split, in order, so a resumed run sees the same batches. Eval mode,
  // no gradients, the engine's generator untouched.
  std::vector<double> validation_losses() {
    const int64_t nv = val_ds_->size();
    const int64_t vb = std::min(nv, cfg_.val_batch_size > 0 ? cfg_.val_batch_size : cfg_.batch_size);
    const int64_t nb = (nv + vb - 1) / vb;
    const int64_t b = (global_step_ / std::max(1, cfg_.val_every)) % nb;
    std::vector<int64_t> idx;
    for (int64_t i = b * vb; i < std::min(nv, (b + 1) * vb); ++i) idx.push_back(i);
    mtl::Batch mb = to_batch(val_ds_->get_batch(idx));
    const bool was_training = model_->is_training();
    Generator& g = default_generator();
    const uint64_t seed = g.seed(), off = g.offset();
    model_->eval();
    std::vector<double> L;
    {
      ag::NoGradGuard ng;
      auto outs = model_->forward(ag::Variable(mb.x));
      for (size_t k = 0; k < tasks_.size(); ++k) L.push_back(model_->task(int(k)).compute_loss(outs[k], mb.y[k]).item());
    }
    model_->train(was_training);
    g.set_state(seed, off);
    return L;
  }

  mtl::Batch first_examples(const data::Dataset& ds, int64_t n) const {
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < std::min(n, ds.size()); ++i) idx.push_back(i);
    return to_batch(ds.get_batch(idx));
  }

  // Fixed probes: the first probe_size training examples (after any validation split) and the first
  // test_probe_size test examples.
  void make_recorder() {
    mtl::diag::DiagnosticsOptions o = diagnostics_options(cfg_);
    if (train_ds_->size() < o.probe_size)
      throw UsageError("diagnostics probe_size " + std::to_string(o.probe_size) + " exceeds the " +
                       std::to_string(train_ds_->size()) + " training examples; lower it (\"diagnostics\": {\"probe_size\": N}) "
                       "or raise train_size");
    if (model_->task(0).kind != mtl::TaskKind::Classification) o.fisher_n = 0;
    recorder_ = std::make_unique<mtl::diag::Recorder>(*model_, first_examples(*train_ds_, o.probe_size),
                                                      first_examples(*data_.test, o.test_probe_size), o);
  }

  // Measures the diagnostics at the current step unless they were measured there already.
  void measure(bool final_record) {
    if (!recorder_) return;
    if (!diag_records_.empty() && diag_records_.back().step >= global_step_) return;
    if (!final_record && !recorder_->due(global_step_)) return;
    mtl::diag::DiagRecord d = recorder_->record(global_step_, last_weights_, final_record);
    diag_log_.write(d, tasks_);
    diag_records_.push_back(std::move(d));
  }

  // The Gramian from the same batch, for methods that compute none; leaves the training state as it was.
  std::optional<mtl::Mat> side_gramian(const mtl::Batch& b) {
    Generator& g = default_generator();
    uint64_t seed = g.seed(), off = g.offset();
    mtl::SplitForward f = mtl::split_forward(*model_, b);
    mtl::RepGrads rg = mtl::representation_grads(*model_, f);
    mtl::Mat M = mtl::gramian(mtl::shared_jacobian(*model_, f, rg));
    g.set_state(seed, off);
    return M;
  }

  std::pair<std::vector<double>, std::vector<double>> evaluate(const data::Dataset& ds, int64_t limit) {
    const int K = int(tasks_.size());
    int64_t n = limit > 0 ? std::min(limit, ds.size()) : ds.size();
    std::vector<double> loss(size_t(K), 0.0), metric(size_t(K), 0.0);
    if (n == 0) {
      std::fill(loss.begin(), loss.end(), std::numeric_limits<double>::quiet_NaN());
      return {loss, loss};
    }
    model_->eval();
    {
      ag::NoGradGuard ng;
      for (int64_t s = 0; s < n; s += cfg_.eval_batch_size) {
        int64_t e = std::min(n, s + cfg_.eval_batch_size);
        std::vector<int64_t> idx;
        for (int64_t i = s; i < e; ++i) idx.push_back(i);
        mtl::Batch mb = to_batch(ds.get_batch(idx));
        auto outs = model_->forward(ag::Variable(mb.x));
        for (int k = 0; k < K; ++k) {
          const auto& task = model_->task(k);
          loss[size_t(k)] += task.compute_loss(outs[size_t(k)], mb.y[size_t(k)]).item() * double(e - s);
          metric[size_t(k)] += task.compute_metric(outs[size_t(k)].data(), mb.y[size_t(k)]);
        }
      }
    }
    model_->train();
    for (int k = 0; k < K; ++k) {
      loss[size_t(k)] /= double(n);
      metric[size_t(k)] /= double(n);
    }
    return {loss, metric};
  }

  EpochRow epoch_row(bool partial) {
    EpochRow row;
    row.epoch = epoch_ + 1;
    row.step = global_step_;
    row.partial = partial;
    row.seconds = epoch_seconds_;
    std::vector<StepRecord> mine;
    for (auto& s : steps_)
      if (s.epoch == epoch_) mine.push_back(s);
    row.ms_per_step = median_ms(mine);
    for (double s : loss_sum_) row.train_loss.push_back(loss_count_ ? s / double(loss_count_) : std::numeric_limits<double>::quiet_NaN());
    if (cfg_.train_eval_size > 0) row.train_metric = evaluate(*train_ds_, cfg_.train_eval_size).second;
    else row.train_metric.assign(tasks_.size(), std::numeric_limits<double>::quiet_NaN());
    auto [tl, tm] = evaluate(*data_.test, 0);
    row.test_loss = tl;
    row.test_metric = tm;
    return row;
  }

  void save() {
    std::map<std::string, Tensor> extra;
    for (auto& [k, v] : trainer_->state_dict()) extra["trainer." + k] = v;
    extra["run.rng"] = u64_pair(default_generator().seed(), default_generator().offset());
    extra["run.loss_sum"] = Tensor::from_vector(loss_sum_);
    json st = json::object();
    st["data"] = data_.description;
    st["epoch"] = epoch_;
    st["step_in_epoch"] = step_in_epoch_;
    st["global_step"] = global_step_;
    st["loss_count"] = loss_count_;
    st["epoch_seconds"] = epoch_seconds_;
    st["history"] = json::array();
    for (auto& r : history_) st["history"].push_back(to_json(r));
    std::map<std::string, std::string> meta{{"run_config", to_json(cfg_).dump()}, {"run_state", st.dump()}};
    nn::save_checkpoint(path(kCheckpoint), *model_, opt_.get(), extra, meta);
  }

  void write_epochs() { write_text_atomic(path("epochs.csv"), epochs_csv(rows_, tasks_, metric_names_)); }

  std::string status(const StepRecord& r) const {
    std::ostringstream o;
    o << "epoch " << (epoch_ + 1) << "/" << cfg_.epochs << " loss";
    char b[32];
    for (size_t k = 0; k < r.losses.size(); ++k) {
      std::snprintf(b, sizeof(b), " %.3f", r.losses[k]);
      o << b;
    }
    return o.str();
  }

  void loop() {
    data::DataLoader loader(train_ds_, cfg_.batch_size, /*shuffle=*/true, /*drop_last=*/false, cfg_.seed);
    if (!device_.is_cpu()) loader.pin_memory(device_);  // prefetched batches copy to the GPU without waiting
    const int64_t nb = loader.num_batches();
    int64_t planned = int64_t(cfg_.epochs) * nb;
    if (cfg_.max_steps > 0) planned = std::min(planned, cfg_.max_steps);
    Progress bar(o_.label.empty() ? cfg_.method : o_.label, planned, cfg_.batch_size, !o_.quiet, o_.progress);
    if (!o_.quiet) {
      std::ostringstream m;
      m << (o_.label.empty() ? cfg_.method : o_.label) << ": " << data_.description << "; " << cfg_.model << "-" << cfg_.arch
        << ", " << cfg_.optimizer << " lr " << cfg_.lr << ", batch " << cfg_.batch_size << ", " << cfg_.epochs << " epoch(s) of "
        << nb << " steps" << (global_step_ ? ", resuming at step " + std::to_string(global_step_) : "") << " -> " << dir_;
      bar.message(m.str());
    }
    const unsigned needs = trainer_->method().needs();
    const bool side = cfg_.gramian_every > 0 && tasks_.size() > 1 && !(needs & mtl::kNeedGramian);
    rows_ = history_;
    bool stopped = false, saved = false;
    while (epoch_ < cfg_.epochs) {
      if (limit_reached()) { stopped = true; break; }
      loader.epoch(uint64_t(epoch_));
      loader.start();
      for (int64_t i = 0; i < step_in_epoch_; ++i)
        if (!loader.next()) throw std::runtime_error("checkpoint position is past the end of the epoch");
      while (true) {
        if (limit_reached()) { stopped = true; break; }
        measure(false);
        auto t0 = Clock::now();
        auto b = loader.next();
        if (!b) break;
        mtl::Batch mb = to_batch(*b);
        StepRecord rec;
        rec.step = global_step_ + 1;
        rec.epoch = epoch_;
        if (side && global_step_ % cfg_.gramian_every == 0) rec.gramian = side_gramian(mb);
        mtl::StepResult r = trainer_->step(mb);
        rec.losses = r.losses;
        rec.weights = r.weights;
        rec.skipped = r.skipped;
        rec.ms_forward = r.ms_forward;
        rec.ms_grads = r.ms_grads;
        rec.ms_method = r.ms_method;
        rec.ms_backward = r.ms_backward;
        rec.ms_optimizer = r.ms_optimizer;
        rec.ms_total = r.ms_total;
        if (r.gramian) rec.gramian = r.gramian;
        if (r.weights.size() == tasks_.size()) last_weights_ = r.weights;
        rec.val_losses = r.val_losses;
        ++global_step_;
        ++step_in_epoch_;
        if (!r.skipped) {
          for (size_t k = 0; k < loss_sum_.size() && k < r.losses.size(); ++k) loss_sum_[k] += r.losses[k];
          ++loss_count_;
        }
        log_file_.write(rec, tasks_);
        steps_.push_back(rec);
        epoch_seconds_ += std::chrono::duration<double>(Clock::now() - t0).count();
        bar.update(global_step_, status(rec));
      }
      saved = false;
      if (stopped && step_in_epoch_ < nb) break;
      // The epoch is complete.
      trainer_->end_epoch();
      EpochRow row = epoch_row(false);
      history_.push_back(row);
      rows_ = history_;
      ++epoch_;
      step_in_epoch_ = 0;
      loss_count_ = 0;
      epoch_seconds_ = 0;
      std::fill(loss_sum_.begin(), loss_sum_.end(), 0.0);
      log_file_.flush();
      write_epochs();
      save();
      saved = true;
      if (!o_.quiet) {
        std::ostringstream m;
        m << "  epoch " << row.epoch << "/" << cfg_.epochs << " (" << format_duration(row.seconds) << "):";
        for (size_t k = 0; k < tasks_.size(); ++k)
          m << " " << tasks_[k] << " test " << metric_names_[k] << " "
            << (metric_names_[k] == "acc" ? pct(row.test_metric[k]) : fmt(row.test_metric[k])) << " loss "
            << fmt(std::round(row.test_loss[k] * 1e4) / 1e4);
        bar.message(m.str());
      }
      if (stopped) break;
    }
    log_file_.flush();
    measure(true);
    if (step_in_epoch_ > 0) {
      // Stopped by max_steps inside an epoch: a partial row (not kept in the checkpoint's history).
      rows_.push_back(epoch_row(true));
      write_epochs();
    } else if (!fs::exists(path("epochs.csv"))) {
      write_epochs();
    }
    if (!saved) save();
    bar.finish(epoch_ >= cfg_.epochs ? "done" : "stopped at max_steps");
  }

  RunConfig cfg_;
  RunOptions o_;
  std::ostream* log_ = nullptr;
  Device device_;
  RunData data_;
  std::shared_ptr<data::Dataset> train_ds_, val_ds_;  // training examples (less any validation split), validation split
  bool needs_val_ = false;
  std::unique_ptr<mtl::diag::Recorder> recorder_;
  mtl::diag::DiagLog diag_log_;
  std::vector<mtl::diag::DiagRecord> diag_records_;
  std::vector<double> last_weights_;  // the method's last task weights (the update direction of the conflict check)
  std::vector<std::string> tasks_, metric_names_;
  std::vector<bool> higher_;
  std::vector<int> target_;  // data target index of each trained task
  std::shared_ptr<mtl::MultiTaskModel> model_;
  std::unique_ptr<optim::Optimizer> opt_;
  std::unique_ptr<mtl::Trainer> trainer_;
  std::string dir_;
  StepLog log_file_;
  // Position and running state.
  int epoch_ = 0;
  int64_t step_in_epoch_ = 0, global_step_ = 0, loss_count_ = 0;
  double epoch_seconds_ = 0;
  std::vector<double> loss_sum_;
  std::vector<EpochRow> history_, rows_;
  std::vector<StepRecord> steps_;
};

}  // namespace

RunResult train_run(const RunConfig& cfg, const std::string& out_dir, const RunOptions& o) {
  validate(cfg);
  if (is_run_dir(out_dir) && !o.overwrite)
    throw std::runtime_error("'" + out_dir + "' already holds a run; continue it with --resume " + out_dir +
                             ", pick another --out, or pass --overwrite");
  Run run(cfg, o);
  run.start_fresh(out_dir);
  return run.go();
}

RunResult resume_run(const std::string& run_dir, const ResumeOverrides& ov, const RunOptions& o) {
  std::string ck = path_join(run_dir, kCheckpoint);
  if (!fs::exists(ck)) throw std::runtime_error("no checkpoint to resume: '" + ck + "' does not exist");
  SafetensorsFile f = load_safetensors(ck);
  auto mc = f.metadata.find("run_config"), ms = f.metadata.find("run_state");
  if (mc == f.metadata.end() || ms == f.metadata.end())
    throw std::runtime_error("'" + ck + "' is not a polyhead train checkpoint (no run_config / run_state metadata)");
  RunConfig cfg;
  json state;
  try {
    cfg = run_config_from_json(json::parse(mc->second));
    state = json::parse(ms->second);
  } catch (const std::exception& e) {
    throw std::runtime_error("'" + ck + "' has unreadable run metadata: " + e.what());
  }
  if (ov.epochs) cfg.epochs = *ov.epochs;
  if (ov.max_steps) cfg.max_steps = *ov.max_steps;
  // A step limit the run already reached is lifted: resuming means going on.
  else if (cfg.max_steps > 0 && cfg.max_steps <= state.value("global_step", int64_t(0))) cfg.max_steps = 0;
  Run run(cfg, o);
  run.start_resumed(run_dir, state);
  return run.go();
}

ResultTable run_table(const RunResult& r) {
  ResultTable t;
  t.title = "polyhead train: " + r.config.method + " on " + r.config.dataset;
  t.tasks = r.tasks;
  t.metric_names = r.metric_names;
  t.higher_is_better = r.higher_is_better;
  ResultRow row;
  row.method = r.config.method == kSingleTask ? kSingleTask + " (" + r.config.task + ")" : r.config.method;
  row.metric = r.final_metric();
  row.loss = r.final_loss();
  row.ms_per_step = r.ms_per_step;
  t.rows.push_back(row);
  std::vector<double> base;
  for (auto& task : r.tasks) {
    auto it = r.config.baselines.find(task);
    if (it == r.config.baselines.end()) break;
    base.push_back(it->second);
  }
  if (base.size() == r.tasks.size()) fill_deltas(t, base);
  if (!r.epochs.empty())
    t.notes.push_back("Test metrics after epoch " + std::to_string(r.epochs.back().epoch) +
                      (r.epochs.back().partial ? " (partial: stopped at max_steps)" : "") + " of " +
                      std::to_string(r.config.epochs) + ", step " + std::to_string(r.global_step) + ".");
  t.notes.push_back(base.size() == r.tasks.size() ? "Δm% against the config's baselines (negative = better)."
                                                   : "Δm% needs single-task baselines: use `polyhead compare`, or give \"baselines\" in the config.");
  t.notes.push_back("ms/step: median wall time of a trainer step (forward, per-task gradients, method, backward, update).");
  if (r.synthetic_data) t.notes.push_back("Data: " + r.data_description + " (NOT real MNIST).");
  else t.notes.push_back("Data: " + r.data_description + ".");
  return t;
}

void write_run_plots(const RunResult& r, const std::string& dir) {
  fs::create_directories(dir);
  const size_t K = r.tasks.size();
  int window = std::max<int>(1, int(r.steps.size() / 40));
  for (size_t k = 0; k < K; ++k) {
    const std::string& t = r.tasks[k];
    LinePlot lp;
    lp.title = "Loss of task " + t + " (" + r.config.method + ")";
    lp.xlabel = "step";
    lp.ylabel = "loss";
    Series tr{"train (step, smoothed)", {}, {}}, te{"train (epoch mean)", {}, {}}, ts{"test (per epoch)", {}, {}};
    std::vector<double> raw;
    for (auto& s : r.steps) {
      tr.x.push_back(double(s.step));
      raw.push_back(k < s.losses.size() ? s.losses[k] : NAN);
    }
    tr.y = smooth(raw, window);
    for (auto& e : r.epochs) {
      te.x.push_back(double(e.step));
      te.y.push_back(k < e.train_loss.size() ? e.train_loss[k] : NAN);
      ts.x.push_back(double(e.step));
      ts.y.push_back(k < e.test_loss.size() ? e.test_loss[k] : NAN);
    }
    lp.series = {tr, te, ts};
    write_text_atomic(path_join(dir, "loss_" + safe_name(t) + ".svg"), line_plot_svg(lp));

    LinePlot mp;
    const std::string& m = r.metric_names[k];
    mp.title = "Test " + m + " of task " + t + " (" + r.config.method + ")";
    mp.xlabel = "epoch";
    mp.ylabel = m;
    mp.integer_x = true;
    Series a{"test", {}, {}}, b{"train (subset)", {}, {}};
    for (auto& e : r.epochs) {
      a.x.push_back(double(e.epoch));
      a.y.push_back(k < e.test_metric.size() ? e.test_metric[k] : NAN);
      b.x.push_back(double(e.epoch));
      b.y.push_back(k < e.train_metric.size() ? e.train_metric[k] : NAN);
    }
    mp.series = {a, b};
    write_text_atomic(path_join(dir, "metric_" + safe_name(t) + ".svg"), line_plot_svg(mp));
  }
  LinePlot wp;
  wp.title = "Task weights (" + r.config.method + ")";
  wp.xlabel = "step";
  wp.ylabel = "weight";
  for (size_t k = 0; k < K; ++k) {
    Series s{r.tasks[k], {}, {}};
    for (auto& st : r.steps) {
      if (k >= st.weights.size()) continue;
      s.x.push_back(double(st.step));
      s.y.push_back(st.weights[k]);
    }
    wp.series.push_back(s);
  }
  write_text_atomic(path_join(dir, "weights.svg"), line_plot_svg(wp));
  if (K > 1) {
    Heatmap h;
    h.title = "Mean gradient cosine (" + r.config.method + ")";
    h.labels = r.tasks;
    h.values = mean_cosines(r.steps);
    write_text_atomic(path_join(dir, "grad_cosine.svg"), heatmap_svg(h));
  }
  write_diagnostics_plots(r, dir);
}

}  // namespace polyhead::run

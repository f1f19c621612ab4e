// `gridbench quant-error` (cli/quant_error_command.h).
#include "cli/quant_error_command.h"

#include <cstdio>
#include <iostream>
#include <map>
#include <sstream>
#include <vector>

#include "cli/exit_status.h"
#include "common/json_util.h"
#include "coordinator/report.h"
#include "engine/jobs/job_kinds.h"
#include "worker/job_runner.h"

namespace gb::cli {
namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

CLI::App* add_quant_error_command(CLI::App& app, QuantErrorFlags& f) {
  CLI::App* c = app.add_subcommand(
      "quant-error",
      "Matmul error of weight formats (reference 004's 4.4): ||X Wq^T - X W^T||_F / ||X W^T||_F in f64, X [R, C] "
      "and W [C, C] seeded N(0,1), only W quantized with the format's own scale rule; or W a model's tensor");
  c->add_option("--weight-format", f.weight_formats, "weight formats, comma-separated (e.g. int8-tensor,fp8-tensor)")
      ->required();
  c->add_option("--shape", f.shapes,
                "shapes RxC, comma-separated (e.g. 16x512,100x1024,4096x4096); with --tensor, R x the tensor's in "
                "features (default 16xC)");
  c->add_option("--model", f.model, "a model (hf:DIR, gguf:FILE, synthetic:PRESET) whose --tensor is W");
  c->add_option("--tensor", f.tensor, "the weight matrix of --model, by its Hugging Face name "
                                      "(e.g. model.layers.0.mlp.down_proj.weight)");
  c->add_option("--seed", f.seed, "seed of W (seed) and X (seed + 1)")->check(CLI::NonNegativeNumber);
  c->add_option("--threads", f.threads, "threads (default all)")->check(CLI::PositiveNumber);
  c->add_option("--format", f.format, "md, csv or json (rows {weight_format, shape, rel_error})");
  f.command = c;
  return c;
}

int run_quant_error_command(const QuantErrorFlags& f) {
  Result<coord::TableFormat> fmt = coord::parse_table_format(f.format);
  if (!fmt.ok()) return fail("--format: " + fmt.message(), kExitInvalid);
  if (f.model.empty() != f.tensor.empty()) return fail("--model and --tensor go together", kExitInvalid);
  const std::vector<std::string> formats = split(f.weight_formats);
  std::vector<std::string> shapes = split(f.shapes);
  if (formats.empty()) return fail("--weight-format: expected one or more formats", kExitInvalid);
  if (shapes.empty() && f.tensor.empty()) return fail("--shape: expected one or more shapes RxC", kExitInvalid);
  if (shapes.empty()) shapes.push_back("");  // the tensor's default

  struct Cell {
    std::string format, shape;
    double rel_error = 0;
  };
  std::vector<Cell> cells;
  for (const std::string& shape : shapes)
    for (const std::string& wf : formats) {
      Json params = {{"weight_format", wf}, {"seed", f.seed}};
      if (!shape.empty()) params["shape"] = shape;
      if (f.threads > 0) params["threads"] = f.threads;
      if (!f.tensor.empty()) {
        params["model"] = f.model;
        params["tensor"] = f.tensor;
      }
      if (Status st = engine::check_job("quant_error", params); !st.ok()) {
        std::string msg = st.message();
        for (auto [param, flag] : {std::pair{"weight_format: ", "--weight-format: "}, {"shape: ", "--shape: "},
                                   {"model: ", "--model: "}, {"tensor: ", "--tensor: "}})
          if (msg.rfind(param, 0) == 0) msg = flag + msg.substr(std::string(param).size());
        return fail(msg, kExitInvalid);
      }
      worker::JobResult r = worker::run_job({"quant_error", content_hash(params), 0, params}, nullptr);
      if (r.status != worker::JobStatus::kSucceeded) return fail(r.error);
      Cell c{wf, shape, 0};
      for (const auto& m : r.output.metrics)
        if (m.name == "rel_error" && m.value) c.rel_error = *m.value;
      if (c.shape.empty()) c.shape = "16x(in features)";
      cells.push_back(c);
    }

  if (*fmt == coord::TableFormat::kJson) {
    Json rows = Json::array();
    for (const Cell& c : cells) {
      Json row = {{"weight_format", c.format}, {"shape", c.shape}, {"rel_error", c.rel_error}};
      if (!f.tensor.empty()) {
        row["model"] = f.model;
        row["tensor"] = f.tensor;
      }
      rows.push_back(row);
    }
    std::cout << rows.dump(2) << "\n";
    return kExitOk;
  }
  // Reference 004's layout: a row per shape, a column per format (and, for two
  // formats, the second's error over the first's).
  coord::Table t;
  t.title = "quant_error: ||X Wq^T - X W^T||_F / ||X W^T||_F" +
            (f.tensor.empty() ? std::string(" (X, W seeded N(0,1), seed ") + std::to_string(f.seed) + ")"
                              : " (W = " + f.model + " " + f.tensor + ")");
  t.header = {"shape"};
  for (const std::string& wf : formats) t.header.push_back(wf);
  if (formats.size() == 2) t.header.push_back(formats[1] + "/" + formats[0]);
  for (size_t s = 0; s < shapes.size(); ++s) {
    std::vector<coord::TableCell> row(1);
    row[0].text = cells[s * formats.size()].shape;
    for (size_t k = 0; k < formats.size(); ++k) {
      coord::TableCell c;
      c.value = cells[s * formats.size() + k].rel_error;
      c.n = 1;
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.6f", *c.value);
      c.text = buf;
      row.push_back(c);
    }
    if (formats.size() == 2) {
      coord::TableCell c;
      const double a = cells[s * 2].rel_error, b = cells[s * 2 + 1].rel_error;
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.2fx", a > 0 ? b / a : 0.0);
      c.text = buf;
      row.push_back(c);
    }
    t.rows.push_back(std::move(row));
  }
  std::cout << coord::render_tables({t}, *fmt);
  return kExitOk;
}

}  // namespace gb::cli

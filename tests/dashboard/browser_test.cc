// The pages in a real browser: headless Chromium (Debian's `chromium` package)
// loads the index and a grid page from the file system with no console message,
// no error and no fetch; the tables and plots are there and drawn; sorting and
// legend toggling work; a grid name with HTML in it is text; a screenshot shows
// a drawn page. A control page with a script error and an outside image must be
// caught, so that a silent harness cannot pass. Skipped where Chromium is absent
// (scripts/test.sh installs it as root).
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dashboard/dashboard.h"
#include "dashboard/grid_page.h"
#include "dashboard/html.h"
#include "dashboard/index_page.h"
#include "tests/dashboard/headless_chromium.h"
#include "tests/dashboard/synthetic_results.h"

namespace gb::dash {
namespace {

namespace fs = std::filesystem;
using coord::PlotKind;
using coord::PlotSpec;

const std::string kHtmlName = "<img src=x onerror=\"document.title='pwned'\"> & <b>co</b>";

// The synthetic results (tests/dashboard/synthetic_results.h) as a stored grid
// with every plot kind in its report section, a failed job, and a name with HTML.
GridPage browser_page() {
  testing::Synthetic s = testing::make_synthetic();
  GridPage page;
  page.grid = s.grid;
  page.grid.name = kHtmlName;
  coord::ReportSpec r;
  r.title = "Memory and speed <by format>";
  r.rows = {"model", "batch_size"};
  r.pivot = "kv_format";
  r.filter = {{"weight_format", "f16"}};
  coord::ReportColumn c;
  c.metric = "kv_cache_bytes";
  c.label = "KV MB";
  c.scale = 1e6;
  c.digits = 1;
  r.columns = {c};
  PlotSpec lines;
  lines.kind = PlotKind::kLines;
  lines.x = "batch_size";
  lines.y = "kv_cache_bytes";
  lines.color = "kv_format";
  lines.measure = {"memory", "roofline"};
  PlotSpec ratio;
  ratio.kind = PlotKind::kBars;
  ratio.y = "decode_W_measured";
  ratio.over = "decode_W_tokens_per_ms";
  ratio.group = {"model"};
  ratio.color = "weight_format";
  ratio.measure = {"speed", "roofline"};
  ratio.filter = {{"weight_format", {"f16", "int4-g128"}}};
  PlotSpec scatter;
  scatter.kind = PlotKind::kScatter;
  scatter.x = "weight_bits";
  scatter.y = "ppl";
  scatter.color = "kv_format";
  scatter.measure = {"roofline", "ppl"};
  scatter.filter = {{"weight_format", {"f16", "int4-g128"}}};
  r.plots = {lines, ratio, scatter};
  r.plots_given = true;
  page.grid.reports = {r};
  page.results = s.results;
  page.series = s.series;
  page.jobs = s.jobs;
  page.jobs[3].state = coord::JobState::kFailed;
  page.jobs[3].error = "gridbench-job: <killed> & gone";
  page.updated_ms = 1735689600000;
  page.index_href = "../index.html";
  auto tables = coord::build_tables(page.grid, page.results);
  EXPECT_TRUE(tables.ok()) << tables.message();
  page.tables = *tables;
  return page;
}

class BrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = browser::find_chromium();
    if (chromium_.empty()) {
      GTEST_SKIP() << "Chromium is not installed (Debian: apt-get install chromium; scripts/test.sh installs it "
                      "when run as root); set GB_CHROMIUM to use another binary";
    }
    dir_ = fs::temp_directory_path() / ("gb_browser_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_, ec);
  }

  // Writes the index and the grid page (both with the report hook) and returns
  // the index's and the page's paths.
  std::pair<fs::path, fs::path> write_site(bool hook) {
    GridPage page = browser_page();
    const std::string folder = page_folder(page.grid.name);
    std::string grid_html = render_grid_page(page);
    IndexEntry e;
    e.name = page.grid.name;
    e.title = "synthetic <results>";
    e.href = folder + "/index.html";
    e.total = static_cast<int64_t>(page.jobs.size());
    e.by_state = {{"succeeded", e.total - 1}, {"failed", 1}};
    e.updated_ms = page.updated_ms;
    e.devices = {"rtx4090", "Test CPU (cpu)"};
    IndexEntry other;
    other.name = "other";
    other.error = "not stored";
    std::string index_html = render_index_page({e, other}, "gridbench.db");
    if (hook) {
      grid_html = browser::with_head_script(grid_html, browser::report_hook());
      index_html = browser::with_head_script(index_html, browser::report_hook());
    }
    EXPECT_TRUE(write_page((dir_ / "site" / folder).string(), "index.html", grid_html).ok());
    EXPECT_TRUE(write_page((dir_ / "site").string(), "index.html", index_html).ok());
    return {dir_ / "site" / "index.html", dir_ / "site" / folder / "index.html"};
  }

  // Loads `file` and returns the hook's report; fails the test on a console
  // message, a crash or a missing report.
  nlohmann::json load(const fs::path& file) {
    browser::Run r = browser::run(chromium_, browser::dump_dom_args(), "file://" + file.string(), dir_.string());
    EXPECT_FALSE(r.timed_out) << r.err;
    EXPECT_TRUE(r.exit.exited && r.exit.code == 0) << r.exit.describe() << "\n" << r.err;
    std::vector<std::string> console = browser::console_lines(r.err);
    EXPECT_TRUE(console.empty()) << "console: " << (console.empty() ? "" : console.front());
    std::optional<nlohmann::json> report = browser::report_of(r.out);
    EXPECT_TRUE(report.has_value()) << "no report in the dumped DOM; stderr:\n" << r.err;
    return report.value_or(nlohmann::json::object());
  }

  std::string chromium_;
  fs::path dir_;
};

TEST_F(BrowserTest, GridPageLoadsCleanAndWorks) {
  auto [index, page] = write_site(true);
  nlohmann::json r = load(page);
  ASSERT_TRUE(r.contains("errors"));
  EXPECT_EQ(r["errors"], nlohmann::json::array()) << r.dump(1);
  EXPECT_EQ(r["resources"], nlohmann::json::array()) << "the page fetched something";
  // The name with HTML in it is text: no image, no handler, the h1 reads it as written.
  EXPECT_EQ(r["h1"], kHtmlName);
  EXPECT_EQ(r["images"], 0);
  EXPECT_EQ(r["handlers"], 0);
  EXPECT_NE(r["title"], "pwned");
  EXPECT_EQ(r["scripts"], 2);  // the hook and the page's own
  EXPECT_EQ(r["js"], true);
  // Tables (the report, failed jobs, all jobs) and plots (three explicit, two series figures), all drawn.
  EXPECT_EQ(r["tables"], 3);
  EXPECT_GE(r["table_rows"].get<int>(), 6 + 1 + 64);
  EXPECT_EQ(r["figures"], 5);
  EXPECT_EQ(r["svgs"], 5);
  EXPECT_EQ(r["empty_svgs"], 0);
  EXPECT_GT(r["svg_marks"].get<int>(), 100);
  // The script: sorting and toggling.
  ASSERT_TRUE(r["sort"].is_object()) << r.dump(1);
  EXPECT_EQ(r["sort"]["ascending"], true) << r["sort"];
  EXPECT_EQ(r["sort"]["descending"], true) << r["sort"];
  EXPECT_EQ(r["sort"]["restored"], true) << r["sort"];
  ASSERT_TRUE(r["toggle"].is_object());
  EXPECT_GT(r["toggle"]["dimmed"].get<int>(), 1);
  EXPECT_EQ(r["toggle"]["after"], 0);
  EXPECT_EQ(r["links"][0], "../index.html");
}

TEST_F(BrowserTest, IndexLoadsCleanAndLinksToThePage) {
  auto [index, page] = write_site(true);
  nlohmann::json r = load(index);
  EXPECT_EQ(r["errors"], nlohmann::json::array()) << r.dump(1);
  EXPECT_EQ(r["resources"], nlohmann::json::array());
  EXPECT_EQ(r["tables"], 1);
  EXPECT_EQ(r["table_rows"], 2);
  EXPECT_EQ(r["images"], 0);
  EXPECT_EQ(r["handlers"], 0);
  ASSERT_EQ(r["links"].size(), 1u);
  // The link resolves to the grid page on disk.
  EXPECT_TRUE(fs::exists(index.parent_path() / r["links"][0].get<std::string>())) << r["links"][0];
  EXPECT_EQ((index.parent_path() / r["links"][0].get<std::string>()).lexically_normal(), page.lexically_normal());
}

// The harness itself: a page with an uncaught error, a console.error and an image
// from the network must be reported, in the hook and in Chromium's log.
TEST_F(BrowserTest, ControlPageErrorsAreCaught) {
  std::string html = page_open("control") +
                     "<h1>control</h1><img src=\"https://example.invalid/x.png\">"
                     "<script>console.error('control error'); undefinedFunction();</script>" +
                     page_close();
  ASSERT_TRUE(write_page(dir_.string(), "control.html", browser::with_head_script(html, browser::report_hook())).ok());
  browser::Run run = browser::run(chromium_, browser::dump_dom_args(), "file://" + (dir_ / "control.html").string(),
                                  dir_.string());
  ASSERT_FALSE(run.timed_out);
  EXPECT_FALSE(browser::console_lines(run.err).empty()) << run.err;
  std::optional<nlohmann::json> r = browser::report_of(run.out);
  ASSERT_TRUE(r.has_value()) << run.err;
  std::string errors = (*r)["errors"].dump();
  EXPECT_NE(errors.find("control error"), std::string::npos) << errors;
  EXPECT_NE(errors.find("undefinedFunction"), std::string::npos) << errors;
  EXPECT_NE(errors.find("csp: img-src"), std::string::npos) << errors;  // the CSP kept the image out
}

// A decoded PNG: RGB(A) 8-bit, non-interlaced, as Chromium writes screenshots.
struct Image {
  uint32_t width = 0, height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // rows of width * channels bytes
};

uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

std::optional<Image> decode_png(const std::string& data) {
  const uint8_t* d = reinterpret_cast<const uint8_t*>(data.data());
  if (data.size() < 33 || data.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) return std::nullopt;
  Image img;
  std::string idat;
  int color_type = -1, depth = 0, interlace = 0;
  for (size_t p = 8; p + 12 <= data.size();) {
    const uint32_t n = be32(d + p);
    const std::string type = data.substr(p + 4, 4);
    if (p + 12 + n > data.size()) return std::nullopt;
    if (type == "IHDR") {
      img.width = be32(d + p + 8);
      img.height = be32(d + p + 12);
      depth = d[p + 16];
      color_type = d[p + 17];
      interlace = d[p + 20];
    } else if (type == "IDAT") {
      idat.append(data, p + 8, n);
    }
    p += 12 + n;
  }
  if (depth != 8 || interlace != 0 || (color_type != 2 && color_type != 6)) return std::nullopt;
  img.channels = color_type == 6 ? 4 : 3;
  const size_t stride = size_t(img.width) * img.channels;
  std::vector<uint8_t> raw((stride + 1) * img.height);
  uLongf len = raw.size();
  if (uncompress(raw.data(), &len, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK ||
      len != raw.size())
    return std::nullopt;
  img.pixels.assign(stride * img.height, 0);
  const int bpp = img.channels;
  for (uint32_t y = 0; y < img.height; ++y) {
    const uint8_t filter = raw[y * (stride + 1)];
    const uint8_t* in = &raw[y * (stride + 1) + 1];
    uint8_t* out = &img.pixels[y * stride];
    const uint8_t* up = y > 0 ? &img.pixels[(y - 1) * stride] : nullptr;
    for (size_t x = 0; x < stride; ++x) {
      const int a = x >= size_t(bpp) ? out[x - bpp] : 0, b = up ? up[x] : 0,
                c = (up && x >= size_t(bpp)) ? up[x - bpp] : 0;
      int v = in[x];
      switch (filter) {
        case 0: break;
        case 1: v += a; break;
        case 2: v += b; break;
        case 3: v += (a + b) / 2; break;
        case 4: {
          const int pa = std::abs(b - c), pb = std::abs(a - c), pc = std::abs(a + b - 2 * c);
          v += (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
          break;
        }
        default: return std::nullopt;
      }
      out[x] = static_cast<uint8_t>(v);
    }
  }
  return img;
}

TEST_F(BrowserTest, ScreenshotShowsADrawnPage) {
  auto [index, page] = write_site(false);
  const fs::path png = dir_ / "page.png";
  browser::Run r = browser::run(chromium_, {"--hide-scrollbars", "--window-size=1280,1800", "--screenshot=" + png.string()},
                                "file://" + page.string(), dir_.string());
  ASSERT_FALSE(r.timed_out);
  ASSERT_TRUE(fs::exists(png)) << r.err;
  EXPECT_TRUE(browser::console_lines(r.err).empty()) << r.err;
  std::optional<Image> img = decode_png(browser::slurp(png.string()));
  ASSERT_TRUE(img.has_value()) << "not a PNG Chromium writes";
  EXPECT_EQ(img->width, 1280u);
  EXPECT_EQ(img->height, 1800u);
  // Varied pixels: many colours, a good share not white, and the plots' first
  // palette colour (#4e79a7) in bars and lines.
  std::set<uint32_t> colours;
  size_t not_white = 0, palette = 0;
  const size_t n = size_t(img->width) * img->height;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* px = &img->pixels[i * img->channels];
    colours.insert((uint32_t(px[0]) << 16) | (uint32_t(px[1]) << 8) | px[2]);
    not_white += !(px[0] > 245 && px[1] > 245 && px[2] > 245);
    palette += px[0] == 0x4e && px[1] == 0x79 && px[2] == 0xa7;
  }
  EXPECT_GT(colours.size(), 200u);
  EXPECT_GT(not_white, n / 20);
  EXPECT_GT(palette, 200u);
}

}  // namespace
}  // namespace gb::dash

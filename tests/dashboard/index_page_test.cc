// The index of grids: a row per grid linking to its page, job counts by state,
// last update, devices; escaped names; a grid whose page failed says why; and the
// folder names of grid pages stay inside the index's folder.
#include "dashboard/index_page.h"

#include <string>

#include <gtest/gtest.h>

#include "dashboard/dashboard.h"
#include "dashboard/report_tables.h"

namespace gb::dash {
namespace {
namespace index_page_test {

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

TEST(IndexPage, RowPerGrid) {
  IndexEntry a;
  a.name = "demo";
  a.title = "Decode roofline <theory>";
  a.href = "demo/index.html";
  a.total = 24;
  a.by_state = {{"succeeded", 20}, {"running", 3}, {"failed", 1}};
  a.updated_ms = 1735689600000;
  a.devices = {"rtx4090", "h100-sxm"};
  IndexEntry b;
  b.name = "<img src=x onerror=alert(1)>";
  b.href = page_folder(b.name) + "/index.html";
  b.total = 2;
  b.by_state = {{"pending", 2}};
  IndexEntry c;
  c.name = "broken";
  c.error = "grid 'broken': $.axes: <bad>";
  std::string html = render_index_page({a, b, c}, "out/gridbench.db");

  EXPECT_NE(html.find("<h1>Grids</h1>"), std::string::npos);
  EXPECT_NE(html.find("<code>out/gridbench.db</code>: 3 grids, 26 jobs"), std::string::npos);
  EXPECT_EQ(count(html, "<tbody>"), 1u);
  EXPECT_EQ(count(html, "<tr>"), 4u);  // header + 3
  EXPECT_NE(html.find("<a href=\"demo/index.html\">demo</a>"), std::string::npos);
  EXPECT_NE(html.find("Decode roofline &lt;theory&gt;"), std::string::npos);
  // States columns: those present, plus succeeded and failed always; no leased, oom, ...
  for (const char* s : {">pending<", ">running<", ">succeeded<", ">failed<"}) EXPECT_NE(html.find(s), std::string::npos) << s;
  for (const char* s : {">leased<", ">oom<", ">timeout<", ">cancelled<"}) EXPECT_EQ(html.find(s), std::string::npos) << s;
  EXPECT_NE(html.find("<span class=\"state succeeded\">20</span>"), std::string::npos);
  EXPECT_NE(html.find("2025-01-01 00:00 UTC"), std::string::npos);
  EXPECT_NE(html.find("h100-sxm, rtx4090"), std::string::npos);
  // The HTML in a name is text, and its page folder a plain name.
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_NE(html.find("&lt;img src=x onerror=alert(1)&gt;"), std::string::npos);
  EXPECT_NE(html.find("page not written: grid &#39;broken&#39;: $.axes: &lt;bad&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<a href=\"\""), std::string::npos);

  EXPECT_NE(render_index_page({}, "x.db").find("No grids in this database yet."), std::string::npos);
}

TEST(IndexPage, DeviceLabels) {
  EXPECT_EQ(device_label({{"name", "Xeon"}, {"kind", "cpu"}}), "Xeon (cpu)");
  EXPECT_EQ(device_label({{"name", "rtx4090"}}, /*theory=*/true), "rtx4090 (theory)");
  EXPECT_EQ(device_label({{"name", "rtx4090"}}), "rtx4090");
  EXPECT_EQ(device_label(nullptr), "unknown device");
  coord::ResultRow r;
  r.kind = "roofline";
  r.device = Json{{"name", "h100-sxm"}};
  EXPECT_EQ(result_device(r), "h100-sxm (theory)");
  r.kind = "speed";
  EXPECT_EQ(result_device(r), "h100-sxm");
}

TEST(IndexPage, PageFolders) {
  EXPECT_EQ(page_folder("demo"), "demo");
  EXPECT_EQ(page_folder("roofline-qwen1.5_v2"), "roofline-qwen1.5_v2");
  for (const std::string bad : {"..", ".", "", "a/b", "<x>", "../../etc"}) {
    const std::string f = page_folder(bad);
    EXPECT_EQ(f.find('/'), std::string::npos) << bad;
    EXPECT_NE(f, ".") << bad;
    EXPECT_NE(f, "..") << bad;
    EXPECT_FALSE(f.empty());
    EXPECT_NE(f[0], '.') << bad;
  }
  EXPECT_NE(page_folder("a/b"), page_folder("a_b"));  // distinct names, distinct folders
}

}  // namespace index_page_test
}  // namespace
}  // namespace gb::dash

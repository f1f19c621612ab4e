// Grouped horizontal bars: one group per table row (its label at the left), one
// bar per pivot value in the legend's colours, the value printed at each bar's
// end, text cells ("oom") printed where their bar would be. Optionally a dashed
// reference line (1 for ratios). Draws what it is given; plot_build decides the
// groups and bars.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace gb::dash::plots {

struct Bar {
  std::optional<double> value;  // as drawn (already scaled)
  std::string text;             // printed at the bar's end ("" : no bar)
  std::string tip;              // hover text
};

struct BarGroup {
  std::string label;
  std::vector<Bar> bars;  // one per BarsFigure::legend entry
};

struct BarsFigure {
  std::string title;
  std::string value_label;          // the value axis
  std::vector<std::string> legend;  // bar names (pivot values); one name: no legend
  std::string legend_title;
  std::vector<BarGroup> groups;
  std::optional<double> reference;  // a dashed line at this value (1 for ratios)
};

constexpr size_t kMaxGroups = 40;  // groups past this are left out (the caption says so)

std::string bars_figure_html(const BarsFigure& fig);

}  // namespace gb::dash::plots

// Scatter plots: points of y against x (perplexity against bits per weight,
// tokens/s against memory), coloured by a legend, optionally in panels that
// share both axes. Each point's hover text says which jobs it is. Draws what it
// is given; plot_build decides the points.
#pragma once

#include <string>
#include <vector>

namespace gb::dash::plots {

struct ScatterPoint {
  double x = 0, y = 0;
  size_t legend = 0;
  std::string tip;
};

struct ScatterPanel {
  std::string title;
  std::vector<ScatterPoint> points;
};

struct ScatterFigure {
  std::string title;
  std::string x_label, y_label;
  std::vector<std::string> legend;  // empty: one colour
  std::string legend_title;
  std::vector<ScatterPanel> panels;
};

std::string scatter_figure_html(const ScatterFigure& fig);

}  // namespace gb::dash::plots

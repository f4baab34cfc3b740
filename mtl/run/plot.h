// mtl/run/plot.h: small, hand-written SVG charts a person opens in a browser.
//
//   line_plot_svg  one or more named series (x, y) on linear axes with "nice" ticks, a grid, a
//                  legend on the right; NaN / infinite points break a line; series of few points
//                  also get markers.
//   heatmap_svg    a labelled K x K matrix on a diverging blue-white-red scale over [vmin, vmax],
//                  each cell annotated with its value, plus a colour bar (gradient cosines).
// The output is standalone SVG 1.1 (XML-escaped text, no scripts, no external references).
#pragma once
#include <string>
#include <vector>

#include "mtl/method.h"

namespace polyhead::run {

struct Series {
  std::string name;
  std::vector<double> x, y;
};

struct LinePlot {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  bool integer_x = false;  // x ticks on whole numbers only (epochs)
};

struct Heatmap {
  std::string title;
  std::vector<std::string> labels;  // rows and columns
  mtl::Mat values;
  double vmin = -1, vmax = 1;
};

std::string line_plot_svg(const LinePlot& p);
std::string heatmap_svg(const Heatmap& h);

// Up to about n round tick values covering [lo, hi] (1, 2, 5 x 10^k steps).
// min_step: the smallest tick spacing allowed (1 for whole numbers; 0 = any).
std::vector<double> nice_ticks(double lo, double hi, int n = 6, double min_step = 0);
std::string xml_escape(const std::string& s);
// Moving average over a centred window of w points (w <= 1: a copy); NaNs are skipped.
std::vector<double> smooth(const std::vector<double>& y, int w);

}  // namespace polyhead::run

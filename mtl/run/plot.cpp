// mtl/run/plot.cpp: see plot.h.
#include "mtl/run/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace polyhead::run {

namespace {

// Tableau 10.
const char* const kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                               "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.2f", v);
  return b;
}

std::string tick_label(double v, double step) {
  char b[32];
  if (v == 0) return "0";
  double a = std::fabs(v);
  if (a >= 1e5 || a < 1e-3) std::snprintf(b, sizeof(b), "%.2g", v);
  else {
    int dec = step >= 1 ? 0 : int(std::ceil(-std::log10(step) - 1e-9));
    std::snprintf(b, sizeof(b), "%.*f", std::clamp(dec, 0, 6), v);
  }
  return b;
}

std::string text(double x, double y, const std::string& s, const char* anchor = "middle", int size = 12,
                 const std::string& extra = "") {
  std::ostringstream o;
  o << "<text x=\"" << num(x) << "\" y=\"" << num(y) << "\" text-anchor=\"" << anchor << "\" font-size=\"" << size
    << "\"" << extra << ">" << xml_escape(s) << "</text>\n";
  return o.str();
}

std::string header(int w, int h) {
  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    << "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" << w << "\" height=\"" << h
    << "\" viewBox=\"0 0 " << w << " " << h << "\" font-family=\"Helvetica, Arial, sans-serif\">\n"
    << "<rect x=\"0\" y=\"0\" width=\"" << w << "\" height=\"" << h << "\" fill=\"white\"/>\n";
  return o.str();
}

// Blue (-) - white - red (+) over [vmin, vmax].
std::string diverging(double v, double vmin, double vmax) {
  double mid = 0.5 * (vmin + vmax), half = 0.5 * (vmax - vmin);
  double t = half > 0 ? std::clamp((v - mid) / half, -1.0, 1.0) : 0.0;
  int r, g, b;
  if (!std::isfinite(v)) { r = g = b = 200; }
  else if (t >= 0) { r = int(255 - t * (255 - 178)); g = int(255 - t * (255 - 24)); b = int(255 - t * (255 - 43)); }
  else { t = -t; r = int(255 - t * (255 - 33)); g = int(255 - t * (255 - 102)); b = int(255 - t * (255 - 172)); }
  char buf[16];
  std::snprintf(buf, sizeof(buf), "#%02x%02x%02x", r, g, b);
  return buf;
}

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') o += ' ';
        else o += c;
    }
  }
  return o;
}

std::vector<double> nice_ticks(double lo, double hi, int n, double min_step) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {
    double d = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= d;
    hi += d;
  }
  double raw = (hi - lo) / std::max(n - 1, 1);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) { step = m * mag; break; }
  step = std::max(step, min_step);
  std::vector<double> t;
  const double first = std::ceil(lo / step - 1e-9);
  for (int i = 0; i < 1000; ++i) {
    double v = (first + i) * step;
    if (v > hi + step * 1e-9) break;
    t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  }
  return t;
}

std::vector<double> smooth(const std::vector<double>& y, int w) {
  if (w <= 1) return y;
  std::vector<double> o(y.size());
  int h = w / 2;
  for (size_t i = 0; i < y.size(); ++i) {
    double s = 0;
    int n = 0;
    for (int d = -h; d <= h; ++d) {
      long j = long(i) + d;
      if (j < 0 || j >= long(y.size()) || !std::isfinite(y[size_t(j)])) continue;
      s += y[size_t(j)];
      ++n;
    }
    o[i] = n ? s / n : y[i];
  }
  return o;
}

std::string line_plot_svg(const LinePlot& p) {
  const int W = 740, H = 420, L = 70, R = 190, T = 40, B = 55;
  const double pw = W - L - R, ph = H - T - B;
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (auto& s : p.series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xlo = std::min(xlo, s.x[i]); xhi = std::max(xhi, s.x[i]);
      ylo = std::min(ylo, s.y[i]); yhi = std::max(yhi, s.y[i]);
    }
  bool empty = !std::isfinite(xlo);
  if (empty) { xlo = 0; xhi = 1; ylo = 0; yhi = 1; }
  auto xt = nice_ticks(xlo, xhi, 7, p.integer_x ? 1.0 : 0.0), yt = nice_ticks(ylo, yhi, 6);
  if (!xt.empty()) { xlo = std::min(xlo, xt.front()); xhi = std::max(xhi, xt.back()); }
  if (!yt.empty()) { ylo = std::min(ylo, yt.front()); yhi = std::max(yhi, yt.back()); }
  if (xhi == xlo) { xlo -= 1; xhi += 1; }
  if (yhi == ylo) { ylo -= 1; yhi += 1; }
  auto X = [&](double x) { return L + (x - xlo) / (xhi - xlo) * pw; };
  auto Y = [&](double y) { return T + ph - (y - ylo) / (yhi - ylo) * ph; };

  std::ostringstream o;
  o << header(W, H);
  o << text(L + pw / 2, 24, p.title, "middle", 15, " font-weight=\"bold\"");
  // grid and ticks
  double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (double v : xt) {
    o << "<line x1=\"" << num(X(v)) << "\" y1=\"" << T << "\" x2=\"" << num(X(v)) << "\" y2=\"" << num(T + ph)
      << "\" stroke=\"#e5e5e5\"/>\n";
    o << text(X(v), T + ph + 16, tick_label(v, xstep), "middle", 11);
  }
  for (double v : yt) {
    o << "<line x1=\"" << L << "\" y1=\"" << num(Y(v)) << "\" x2=\"" << num(L + pw) << "\" y2=\"" << num(Y(v))
      << "\" stroke=\"#e5e5e5\"/>\n";
    o << text(L - 6, Y(v) + 4, tick_label(v, ystep), "end", 11);
  }
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << num(pw) << "\" height=\"" << num(ph)
    << "\" fill=\"none\" stroke=\"#333\"/>\n";
  o << text(L + pw / 2, H - 14, p.xlabel, "middle", 12);
  o << text(18, T + ph / 2, p.ylabel, "middle", 12, " transform=\"rotate(-90 18 " + num(T + ph / 2) + ")\"");
  if (empty) o << text(L + pw / 2, T + ph / 2, "no data", "middle", 14, " fill=\"#888\"");
  // series
  for (size_t si = 0; si < p.series.size(); ++si) {
    const Series& s = p.series[si];
    const char* color = kColors[si % 10];
    std::string dash = si >= 10 ? " stroke-dasharray=\"6 3\"" : "";
    std::ostringstream pts;
    size_t npts = 0, finite = 0;
    auto flush = [&] {
      if (npts >= 2)
        o << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.8\"" << dash << " points=\""
          << pts.str() << "\"/>\n";
      pts.str("");
      npts = 0;
    };
    size_t n = std::min(s.x.size(), s.y.size());
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) { flush(); continue; }
      pts << (npts ? " " : "") << num(X(s.x[i])) << "," << num(Y(s.y[i]));
      ++npts;
      ++finite;
    }
    flush();
    if (finite <= 30)
      for (size_t i = 0; i < n; ++i)
        if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]))
          o << "<circle cx=\"" << num(X(s.x[i])) << "\" cy=\"" << num(Y(s.y[i])) << "\" r=\"3\" fill=\"" << color
            << "\"/>\n";
    double ly = T + 10 + 18.0 * double(si);
    o << "<line x1=\"" << num(L + pw + 12) << "\" y1=\"" << num(ly) << "\" x2=\"" << num(L + pw + 34) << "\" y2=\""
      << num(ly) << "\" stroke=\"" << color << "\" stroke-width=\"2.5\"" << dash << "/>\n";
    o << text(L + pw + 40, ly + 4, s.name, "start", 11);
  }
  o << "</svg>\n";
  return o.str();
}

std::string heatmap_svg(const Heatmap& h) {
  const int K = h.values.rows;
  const int cell = std::clamp(360 / std::max(K, 1), 24, 90);
  const int L = 110, T = 50, Rb = 110, Bm = 30;
  const int W = L + cell * K + Rb, Hh = T + std::max(cell * K, 120) + Bm + 20;
  std::ostringstream o;
  o << header(W, Hh);
  o << text(L + cell * K / 2.0, 26, h.title, "middle", 15, " font-weight=\"bold\"");
  if (K == 0) o << text(W / 2.0, T + 20, "no data", "middle", 14, " fill=\"#888\"");
  for (int i = 0; i < K; ++i) {
    std::string lab = size_t(i) < h.labels.size() ? h.labels[size_t(i)] : std::to_string(i);
    o << text(L - 8, T + cell * (i + 0.5) + 4, lab, "end", 12);
    o << text(L + cell * (i + 0.5), T + cell * K + 18, lab, "middle", 12);
    for (int j = 0; j < K; ++j) {
      double v = h.values(i, j);
      o << "<rect x=\"" << L + cell * j << "\" y=\"" << T + cell * i << "\" width=\"" << cell << "\" height=\"" << cell
        << "\" fill=\"" << diverging(v, h.vmin, h.vmax) << "\" stroke=\"white\"/>\n";
      if (cell >= 30) {
        char b[32];
        std::snprintf(b, sizeof(b), "%.2f", v);
        double t = (v - 0.5 * (h.vmin + h.vmax)) / std::max(0.5 * (h.vmax - h.vmin), 1e-12);
        o << text(L + cell * (j + 0.5), T + cell * (i + 0.5) + 4, b, "middle", 11,
                  std::fabs(t) > 0.6 ? " fill=\"white\"" : " fill=\"#222\"");
      }
    }
  }
  // colour bar
  const int cx = L + cell * K + 30, bh = std::max(cell * K, 120), steps = 40;
  for (int s = 0; s < steps; ++s) {
    double v = h.vmax - (h.vmax - h.vmin) * (s + 0.5) / steps;
    o << "<rect x=\"" << cx << "\" y=\"" << num(T + bh * double(s) / steps) << "\" width=\"16\" height=\""
      << num(bh / double(steps) + 0.5) << "\" fill=\"" << diverging(v, h.vmin, h.vmax) << "\"/>\n";
  }
  o << "<rect x=\"" << cx << "\" y=\"" << T << "\" width=\"16\" height=\"" << bh << "\" fill=\"none\" stroke=\"#333\"/>\n";
  char b[32];
  std::snprintf(b, sizeof(b), "%.2g", h.vmax);
  o << text(cx + 22, T + 10, b, "start", 11);
  std::snprintf(b, sizeof(b), "%.2g", 0.5 * (h.vmin + h.vmax));
  o << text(cx + 22, T + bh / 2.0 + 4, b, "start", 11);
  std::snprintf(b, sizeof(b), "%.2g", h.vmin);
  o << text(cx + 22, T + bh, b, "start", 11);
  o << "</svg>\n";
  return o.str();
}

}  // namespace polyhead::run

// tests/cli/test_cli_plot.cpp: the SVG writer produces well-formed XML (checked by a small
// validating scanner: balanced tags, quoted attributes, known entities only), escapes text, and
// draws what it is given.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "mtl/run/plot.h"

using namespace polyhead;
using namespace polyhead::run;

namespace {

// "" when s is well-formed XML with one root element; else what is wrong and where.
std::string xml_problem(const std::string& s) {
  std::vector<std::string> stack;
  size_t i = 0, roots = 0;
  auto name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' || c == '.'; };
  auto check_text = [&](size_t a, size_t b) -> std::string {
    for (size_t j = a; j < b; ++j) {
      if (s[j] == '<') return "raw '<' at " + std::to_string(j);
      if (s[j] == '&') {
        size_t e = s.find(';', j);
        if (e == std::string::npos) return "unterminated entity at " + std::to_string(j);
        std::string ent = s.substr(j, e - j + 1);
        if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;")
          return "unknown entity " + ent;
      }
    }
    return "";
  };
  if (s.rfind("<?xml", 0) == 0) {
    i = s.find("?>");
    if (i == std::string::npos) return "unterminated XML declaration";
    i += 2;
  }
  while (i < s.size()) {
    size_t lt = s.find('<', i);
    if (lt == std::string::npos) {
      std::string p = check_text(i, s.size());
      if (!p.empty()) return p;
      if (s.find_first_not_of(" \n\t\r", i) != std::string::npos && stack.empty()) return "text after the root";
      break;
    }
    std::string p = check_text(i, lt);
    if (!p.empty()) return p;
    if (stack.empty() && s.find_first_not_of(" \n\t\r", i) < lt) return "text outside the root at " + std::to_string(i);
    size_t j = lt + 1;
    bool closing = j < s.size() && s[j] == '/';
    if (closing) ++j;
    size_t n0 = j;
    while (j < s.size() && name_char(s[j])) ++j;
    std::string name = s.substr(n0, j - n0);
    if (name.empty()) return "empty tag name at " + std::to_string(lt);
    if (closing) {
      if (stack.empty() || stack.back() != name) return "mismatched </" + name + "> at " + std::to_string(lt);
      stack.pop_back();
      if (j >= s.size() || s[j] != '>') return "bad closing tag at " + std::to_string(lt);
      i = j + 1;
      continue;
    }
    // attributes
    std::vector<std::string> seen;
    while (true) {
      while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j >= s.size()) return "unterminated tag <" + name + ">";
      if (s[j] == '>' || (s[j] == '/' && j + 1 < s.size() && s[j + 1] == '>')) break;
      size_t a0 = j;
      while (j < s.size() && name_char(s[j])) ++j;
      std::string attr = s.substr(a0, j - a0);
      if (attr.empty()) return "bad attribute in <" + name + "> at " + std::to_string(j);
      for (auto& x : seen)
        if (x == attr) return "duplicate attribute " + attr + " in <" + name + ">";
      seen.push_back(attr);
      if (j >= s.size() || s[j] != '=') return "attribute " + attr + " without value";
      ++j;
      if (j >= s.size() || s[j] != '"') return "unquoted attribute " + attr;
      size_t q = s.find('"', j + 1);
      if (q == std::string::npos) return "unterminated attribute " + attr;
      std::string pv = check_text(j + 1, q);
      if (!pv.empty()) return "in attribute " + attr + ": " + pv;
      j = q + 1;
    }
    bool self = s[j] == '/';
    if (stack.empty()) ++roots;
    if (!self) stack.push_back(name);
    i = j + (self ? 2 : 1);
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (roots != 1) return std::to_string(roots) + " root elements";
  return "";
}

size_t count(const std::string& s, const std::string& part) {
  size_t n = 0;
  for (size_t p = s.find(part); p != std::string::npos; p = s.find(part, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("plot: the scanner rejects broken XML") {
  CHECK(xml_problem("<svg><g></g></svg>").empty());
  CHECK_FALSE(xml_problem("<svg><g></svg>").empty());
  CHECK_FALSE(xml_problem("<svg a=1></svg>").empty());
  CHECK_FALSE(xml_problem("<svg><text>a < b</text></svg>").empty());
  CHECK_FALSE(xml_problem("<svg><text>R&D</text></svg>").empty());
  CHECK_FALSE(xml_problem("<svg/><svg/>").empty());
}

TEST_CASE("plot: line plots are well-formed SVG with one polyline per series and a legend") {
  LinePlot p;
  p.title = "Loss of <task> \"left\" & 'right'";
  p.xlabel = "step";
  p.ylabel = "loss";
  Series a{"ew", {}, {}}, b{"pcgrad & co", {}, {}};
  for (int i = 0; i < 100; ++i) {
    a.x.push_back(i);
    a.y.push_back(std::exp(-i / 30.0));
    b.x.push_back(i);
    b.y.push_back(i == 50 ? NAN : 0.5 * std::exp(-i / 20.0));  // a gap
  }
  p.series = {a, b};
  std::string svg = line_plot_svg(p);
  CHECK(xml_problem(svg) == "");
  CHECK(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\"") != std::string::npos);
  CHECK(svg.find("Loss of &lt;task&gt; &quot;left&quot; &amp; &apos;right&apos;") != std::string::npos);
  CHECK(svg.find("pcgrad &amp; co") != std::string::npos);
  CHECK(count(svg, "<polyline") == 3);  // the NaN splits the second series
  CHECK(count(svg, "<circle") == 0);    // many points: no markers
}

TEST_CASE("plot: degenerate inputs still give well-formed files") {
  LinePlot empty;
  empty.title = "nothing";
  CHECK(xml_problem(line_plot_svg(empty)) == "");
  CHECK(line_plot_svg(empty).find("no data") != std::string::npos);
  LinePlot one;
  one.series = {{"one point", {1}, {0.5}}, {"flat", {0, 1, 2}, {2, 2, 2}}};
  std::string s = line_plot_svg(one);
  CHECK(xml_problem(s) == "");
  CHECK(count(s, "<circle") == 4);
  LinePlot bad;
  bad.series = {{"all nan", {0, 1}, {NAN, INFINITY}}};
  CHECK(xml_problem(line_plot_svg(bad)) == "");
}

TEST_CASE("plot: heatmaps are well-formed with one cell per entry") {
  Heatmap h;
  h.title = "cos <g_i, g_j>";
  h.labels = {"left", "right", "a&b"};
  h.values = mtl::Mat(3, 3);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) h.values(i, j) = i == j ? 1.0 : -0.25 * (i + j);
  h.values(2, 1) = NAN;
  std::string svg = heatmap_svg(h);
  CHECK(xml_problem(svg) == "");
  CHECK(svg.find("cos &lt;g_i, g_j&gt;") != std::string::npos);
  CHECK(svg.find("-0.75") != std::string::npos);
  CHECK(count(svg, "stroke=\"white\"/>") == 9);
  Heatmap none;
  CHECK(xml_problem(heatmap_svg(none)) == "");
}

TEST_CASE("plot: nice ticks and smoothing") {
  auto t = nice_ticks(0, 1, 6);
  REQUIRE(t.size() == 6);
  CHECK(t.front() == 0.0);
  CHECK(t.back() == doctest::Approx(1.0));
  t = nice_ticks(3, 3);
  CHECK(t.size() >= 2);
  CHECK(nice_ticks(1, 2, 7, 1.0) == std::vector<double>{1, 2});
  t = nice_ticks(0, 2340, 7);
  CHECK(t[1] - t[0] == doctest::Approx(500));
  auto s = smooth({1, 2, 3, 4, 5}, 3);
  CHECK(s[0] == doctest::Approx(1.5));
  CHECK(s[2] == doctest::Approx(3));
  CHECK(smooth({1, 2}, 1) == std::vector<double>{1, 2});
}

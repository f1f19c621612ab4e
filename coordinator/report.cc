#include "coordinator/report.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <deque>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "common/json_util.h"
#include "coordinator/report_check.h"

namespace gb::coord {

namespace {

// ---------------------------------------------------------------- numbers

// `v` in plain positional notation, the shortest spelling that round-trips.
std::string shortest_fixed(double v) {
  char buf[1100];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  GB_CHECK(r.ec == std::errc());
  return std::string(buf, r.ptr);
}

// Rounds the decimal spelling of `v` to `digits` decimals: half away from zero,
// or towards minus infinity when `floor`. Working on the decimal spelling (not on
// v * 10^digits) makes 1.005 round to 1.01 as it reads, and 0.29 floor to 0.29.
std::string round_decimal(double v, int digits, bool floor) {
  std::string s = shortest_fixed(v);
  bool neg = false;
  if (!s.empty() && s[0] == '-') {
    neg = true;
    s.erase(0, 1);
  }
  std::string ip = s, fp;
  if (auto dot = s.find('.'); dot != std::string::npos) {
    ip = s.substr(0, dot);
    fp = s.substr(dot + 1);
  }
  if (static_cast<int>(fp.size()) < digits) fp.append(digits - fp.size(), '0');
  std::string kept = ip + fp.substr(0, digits);
  std::string dropped = fp.substr(digits);
  bool up = false;
  if (floor) {
    up = neg && dropped.find_first_not_of('0') != std::string::npos;
  } else {
    up = !dropped.empty() && dropped[0] >= '5';
  }
  if (up) {
    int i = static_cast<int>(kept.size()) - 1;
    for (; i >= 0; --i) {
      if (kept[i] == '9') {
        kept[i] = '0';
      } else {
        ++kept[i];
        break;
      }
    }
    if (i < 0) kept.insert(kept.begin(), '1');
  }
  std::string int_part = kept.substr(0, kept.size() - digits);
  std::string frac_part = kept.substr(kept.size() - digits);
  size_t nz = int_part.find_first_not_of('0');
  int_part = nz == std::string::npos ? "0" : int_part.substr(nz);
  bool zero = int_part == "0" && frac_part.find_first_not_of('0') == std::string::npos;
  std::string out = (neg && !zero) ? "-" : "";
  out += int_part;
  if (digits > 0) out += "." + frac_part;
  return out;
}

std::string auto_number(double v) {
  if (v == std::trunc(v) && std::fabs(v) < 1e15) return round_decimal(v, 0, false);
  // Four significant digits, never in exponent form, trailing zeros dropped.
  std::string s = shortest_fixed(std::fabs(v));
  size_t dot = s.find('.');
  std::string ip = dot == std::string::npos ? s : s.substr(0, dot);
  int digits = 0;
  if (ip != "0") {
    digits = std::max(0, 4 - static_cast<int>(ip.size()));
  } else {
    std::string fp = s.substr(dot + 1);
    size_t first = fp.find_first_not_of('0');
    digits = static_cast<int>(first == std::string::npos ? 0 : first) + 4;
  }
  std::string out = round_decimal(v, digits, false);
  if (out.find('.') != std::string::npos) {
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
  }
  if (out == "-0") out = "0";
  return out;
}

std::string delta_text(double pct) {
  std::string t = format_number(pct, 1);
  if (t.empty() || t[0] != '-') t = "+" + t;
  return t + "%";
}

// ---------------------------------------------------------------- building

Json param_of(const Json& params, const std::string& name) {
  if (params.is_object()) {
    auto it = params.find(name);
    if (it != params.end()) return *it;
  }
  return nullptr;
}

std::string key_of(const Json& j) { return canonical_json(j); }

struct Accum {
  std::vector<double> values;
  std::string text;  // the first text seen (value-less metrics)
  std::string unit;
};

struct CellStats {
  bool present = false;
  std::optional<double> mean;
  int n = 0;
  double stddev = 0;
  double min = 0, max = 0;
  std::string text;
};

CellStats stats_of(const Accum* a) {
  CellStats s;
  if (a == nullptr) return s;
  s.present = true;
  if (a->values.empty()) {
    s.text = a->text;
    return s;
  }
  s.n = static_cast<int>(a->values.size());
  double sum = 0;
  for (double v : a->values) sum += v;
  double mean = sum / s.n;
  s.mean = mean;
  s.min = *std::min_element(a->values.begin(), a->values.end());
  s.max = *std::max_element(a->values.begin(), a->values.end());
  if (s.n > 1) {
    double ss = 0;
    for (double v : a->values) ss += (v - mean) * (v - mean);
    s.stddev = std::sqrt(ss / (s.n - 1));
  }
  return s;
}

Result<Table> build_one(const ReportSpec& spec, const std::vector<const ResultRow*>& all) {
  const std::string where = "report '" + spec.title + "'";
  if (!spec.baseline.is_null() && !spec.baseline.is_object()) {
    return Error{where + ": baseline must be an object of parameter values"};
  }
  std::vector<ReportColumn> columns = spec.columns;

  // Derived columns (minus/over) also read the results of their other filter: the
  // column's filter with its `against` values in place.
  std::vector<Json> other_filter(columns.size());
  for (size_t ci = 0; ci < columns.size(); ++ci) {
    const Json& o = columns[ci].against();
    if (o.empty()) continue;
    other_filter[ci] = columns[ci].filter;
    for (auto it = o.begin(); it != o.end(); ++it) other_filter[ci][it.key()] = it.value();
  }

  // What a result's parameters decide, once per job (its rows share one params
  // value): whether the table's filter takes it, its row key and pivot, and which
  // column filters take it. Columns are known only after the metrics are, so the
  // filters of default columns (none) are all-takes.
  struct ParamKeys {
    bool filter_ok = false;
    Json row_key, pivot;
    std::string row_text, pivot_text;
    std::vector<char> column_ok, other_ok;
  };
  std::unordered_map<const Json*, ParamKeys> memo;
  auto keys_of = [&](const ResultRow& r) -> const ParamKeys& {
    const Json& params = r.params;
    auto [it, fresh] = memo.try_emplace(&params);
    ParamKeys& k = it->second;
    if (fresh) {
      k.filter_ok = filter_takes(spec.filter, params);
      k.row_key = Json::array();
      for (const auto& name : spec.rows) k.row_key.push_back(param_of(params, name));
      k.pivot = spec.pivot.empty() ? Json(nullptr) : param_of(params, spec.pivot);
      k.row_text = key_of(k.row_key);
      k.pivot_text = key_of(k.pivot);
      k.column_ok.resize(columns.size());
      k.other_ok.resize(columns.size());
      for (size_t ci = 0; ci < columns.size(); ++ci) {
        k.column_ok[ci] = filter_takes(columns[ci].filter, params);
        k.other_ok[ci] = other_filter[ci].is_object() && filter_takes(other_filter[ci], params);
      }
    }
    return k;
  };

  // The results this table looks at.
  std::vector<const ResultRow*> rows;
  for (const ResultRow* r : all) {
    if ((spec.kind.empty() || r->kind == spec.kind) && keys_of(*r).filter_ok) rows.push_back(r);
  }
  std::vector<std::string> metric_order;
  std::unordered_set<std::string> metric_set;
  for (const auto* r : rows) {
    if (metric_set.insert(r->metric).second) metric_order.push_back(r->metric);
  }

  if (columns.empty()) {
    for (const auto& m : metric_order) {
      ReportColumn c;
      c.metric = m;
      columns.push_back(c);
    }
    other_filter.assign(columns.size(), Json());
    for (auto& [params, k] : memo) {
      k.column_ok.assign(columns.size(), 1);
      k.other_ok.assign(columns.size(), 0);
    }
  }
  std::set<std::string> table_metrics;
  std::vector<char> column_present(columns.size());
  for (size_t ci = 0; ci < columns.size(); ++ci) {
    column_present[ci] = metric_set.count(columns[ci].metric) != 0;
    if (column_present[ci]) table_metrics.insert(columns[ci].metric);
  }

  // Which columns a result fills: its metric and the column's filter; a derived
  // column also reads the results of its other filter.
  auto fills = [&](size_t ci, const ResultRow& r, const ParamKeys& k) {
    return column_present[ci] && k.column_ok[ci] && columns[ci].metric == r.metric;
  };
  auto fills_other = [&](size_t ci, const ResultRow& r, const ParamKeys& k) {
    return k.other_ok[ci] && columns[ci].metric == r.metric;
  };

  // Row keys and pivot values in order of first appearance. A result makes a row
  // when it fills one of the table's columns (or, for a table of parameters only, always).
  std::vector<Json> row_keys;
  std::unordered_map<std::string, size_t> row_index;
  std::vector<Json> pivots;
  std::unordered_map<std::string, size_t> pivot_index;
  for (const auto* r : rows) {
    const ParamKeys& k = keys_of(*r);
    if (!table_metrics.empty()) {
      bool any = false;
      for (size_t ci = 0; ci < columns.size() && !any; ++ci) any = fills(ci, *r, k);
      if (!any) continue;
    }
    if (row_index.emplace(k.row_text, row_keys.size()).second) row_keys.push_back(k.row_key);
    if (pivot_index.emplace(k.pivot_text, pivots.size()).second) pivots.push_back(k.pivot);
  }
  if (pivots.empty()) {
    pivots.push_back(nullptr);
    pivot_index.emplace(key_of(Json(nullptr)), 0);
  }

  // Accumulate: (row, pivot, column) -> values (and the other values of a derived
  // column); (row, pivot) -> parameters.
  std::map<std::tuple<size_t, size_t, size_t>, Accum> cells;
  std::map<std::tuple<std::string, std::string, size_t>, Accum> others;  // by their own row key and pivot
  std::map<std::pair<size_t, size_t>, const Json*> params_at;
  std::map<std::string, std::string> unit_of;
  auto add_to = [](Accum& a, const ResultRow& r) {
    if (r.value.has_value()) {
      a.values.push_back(*r.value);
    } else if (a.text.empty()) {
      a.text = r.text;
    }
  };
  for (const auto* r : rows) {
    const ParamKeys& k = keys_of(*r);
    for (size_t ci = 0; ci < columns.size(); ++ci)
      if (fills_other(ci, *r, k)) add_to(others[{k.row_text, k.pivot_text, ci}], *r);
    auto ri = row_index.find(k.row_text);
    auto pi = pivot_index.find(k.pivot_text);
    if (ri == row_index.end() || pi == pivot_index.end()) continue;
    if (!table_metrics.count(r->metric)) {
      params_at.emplace(std::make_pair(ri->second, pi->second), &r->params.get());
      continue;
    }
    for (size_t ci = 0; ci < columns.size(); ++ci) {
      if (fills(ci, *r, k)) {
        params_at.emplace(std::make_pair(ri->second, pi->second), &r->params.get());
        add_to(cells[{ri->second, pi->second, ci}], *r);
      }
    }
    if (!r->unit.empty()) unit_of.emplace(r->metric, r->unit);
  }
  auto accum_at = [&](size_t ri, size_t pi, size_t ci) -> const Accum* {
    auto it = cells.find({ri, pi, ci});
    return it == cells.end() ? nullptr : &it->second;
  };
  // A derived cell's other value: its row and pivot with the column's `against`
  // values in place of theirs.
  auto other_at = [&](size_t ri, size_t pi, size_t ci) -> const Accum* {
    Json k = row_keys[ri], p = pivots[pi];
    const Json& o = columns[ci].against();
    for (auto it = o.begin(); it != o.end(); ++it) {
      for (size_t i = 0; i < spec.rows.size(); ++i)
        if (spec.rows[i] == it.key()) k[i] = it.value();
      if (it.key() == spec.pivot) p = it.value();
    }
    auto it = others.find({key_of(k), key_of(p), ci});
    return it == others.end() ? nullptr : &it->second;
  };

  // Where each row's baseline is: (row index, pivot index), or nullopt.
  std::vector<std::vector<std::optional<std::pair<size_t, size_t>>>> base_of(
      row_keys.size(), std::vector<std::optional<std::pair<size_t, size_t>>>(pivots.size()));
  if (spec.baseline.is_object()) {
    for (auto it = spec.baseline.begin(); it != spec.baseline.end(); ++it) {
      bool known = it.key() == spec.pivot ||
                   std::find(spec.rows.begin(), spec.rows.end(), it.key()) != spec.rows.end();
      if (!known) {
        return Error{where + ": baseline parameter '" + it.key() +
                     "' is neither a row parameter nor the pivot"};
      }
    }
    for (size_t ri = 0; ri < row_keys.size(); ++ri) {
      Json k = row_keys[ri];
      std::optional<Json> base_pivot;
      for (auto it = spec.baseline.begin(); it != spec.baseline.end(); ++it) {
        if (it.key() == spec.pivot) {
          base_pivot = it.value();
          continue;
        }
        for (size_t i = 0; i < spec.rows.size(); ++i) {
          if (spec.rows[i] == it.key()) k[i] = it.value();
        }
      }
      auto bri = row_index.find(key_of(k));
      if (bri == row_index.end()) continue;
      for (size_t pi = 0; pi < pivots.size(); ++pi) {
        if (base_pivot) {
          auto bpi = pivot_index.find(key_of(*base_pivot));
          if (bpi == pivot_index.end()) continue;
          base_of[ri][pi] = std::make_pair(bri->second, bpi->second);
        } else {
          base_of[ri][pi] = std::make_pair(bri->second, pi);
        }
      }
    }
  }

  Table t;
  t.title = spec.title;
  for (const auto& name : spec.rows) {
    t.header.push_back(name);
    TableColumn c;
    c.key = true;
    c.name = c.label = name;
    t.columns.push_back(c);
  }
  t.key_columns = static_cast<int>(spec.rows.size());
  for (const auto& pv : pivots) {
    for (const auto& col : columns) {
      TableColumn c;
      c.metric = metric_set.count(col.metric) > 0;
      c.name = col.metric;
      c.label = col.label.empty() ? col.metric : col.label;
      c.pivot_value = spec.pivot.empty() ? "" : param_text(pv);
      c.unit = c.metric ? unit_of[col.metric] : "";
      c.scale = col.scale;
      c.suffix = col.suffix;
      t.header.push_back(spec.pivot.empty() ? c.label : c.pivot_value + " " + c.label);
      t.columns.push_back(c);
    }
  }

  for (size_t ri = 0; ri < row_keys.size(); ++ri) {
    std::vector<TableCell> out;
    for (const auto& v : row_keys[ri]) {
      TableCell key;
      key.text = param_text(v);
      out.push_back(key);
    }
    for (size_t pi = 0; pi < pivots.size(); ++pi) {
      for (size_t ci = 0; ci < columns.size(); ++ci) {
        const ReportColumn& col = columns[ci];
        TableCell cell;
        if (!metric_set.count(col.metric)) {  // a parameter column
          auto p = params_at.find({ri, pi});
          if (p != params_at.end()) {
            Json v = param_of(*p->second, col.metric);
            if (v.is_number()) {
              cell.value = v.get<double>();
              cell.n = 1;
              cell.text = format_number(*cell.value, col.digits, col.scale, col.suffix, col.truncate);
            } else {
              cell.text = param_text(v);
            }
          }
          out.push_back(cell);
          continue;
        }
        CellStats s = stats_of(accum_at(ri, pi, ci));
        if (!s.present) {
          out.push_back(cell);
          continue;
        }
        if (other_filter[ci].is_object()) {  // minus / over / vs: a derived number, or empty
          CellStats o = stats_of(other_at(ri, pi, ci));
          if (s.mean && o.mean && (!col.minus.empty() || *o.mean != 0)) {
            cell.n = s.n;
            if (!col.minus.empty()) {
              cell.value = *s.mean - *o.mean;
              cell.text = format_number(*cell.value, col.digits, col.scale, col.suffix, col.truncate);
            } else if (!col.over.empty()) {
              cell.value = *s.mean / *o.mean;
              cell.text = format_number(*cell.value, col.digits, 1, col.suffix, col.truncate);
            } else {
              cell.value = (*s.mean - *o.mean) / *o.mean * 100.0;
              cell.text = format_number(*cell.value, col.digits < 0 ? 2 : col.digits, 1, "", col.truncate);
              if (cell.text[0] != '-') cell.text = "+" + cell.text;
              cell.text += "%";
            }
          } else if (!s.mean) {
            cell.text = s.text;
          }
          out.push_back(cell);
          continue;
        }
        if (!s.mean) {
          cell.text = s.text;
          out.push_back(cell);
          continue;
        }
        cell.value = s.mean;
        cell.n = s.n;
        cell.stddev = s.stddev;
        cell.text = format_number(*s.mean, col.digits, col.scale, col.suffix, col.truncate);
        if (s.n > 1 && col.spread == "sd")
          cell.text += " ± " + format_number(s.stddev, col.digits, col.scale, col.suffix);
        else if (s.n > 1 && col.spread == "range")
          cell.text += " [" + format_number(s.min, col.digits, col.scale, col.suffix, col.truncate) + ", " +
                       format_number(s.max, col.digits, col.scale, col.suffix, col.truncate) + "]";
        const auto& b = base_of[ri][pi];
        if (b && !(b->first == ri && b->second == pi)) {
          CellStats bs = stats_of(accum_at(b->first, b->second, ci));
          if (bs.mean && *bs.mean != 0) {
            cell.delta_pct = (*s.mean - *bs.mean) / *bs.mean * 100.0;
            cell.text += " (" + delta_text(*cell.delta_pct) + ")";
          }
        }
        out.push_back(cell);
      }
    }
    t.rows.push_back(std::move(out));
  }
  return t;
}

// ---------------------------------------------------------------- rendering

size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++n;  // count code points
  }
  return n;
}

std::string md_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string render_markdown(const std::vector<Table>& tables) {
  std::ostringstream os;
  bool first = true;
  for (const auto& t : tables) {
    if (!first) os << "\n";
    first = false;
    os << "### " << md_escape(t.title) << "\n\n";
    size_t ncol = t.header.size();
    for (const auto& r : t.rows) ncol = std::max(ncol, r.size());
    if (ncol == 0) {
      os << "(empty)\n";
      continue;
    }
    std::vector<std::vector<std::string>> grid;
    std::vector<std::string> head(ncol);
    for (size_t i = 0; i < t.header.size(); ++i) head[i] = md_escape(t.header[i]);
    grid.push_back(head);
    std::vector<bool> numeric(ncol, false);
    for (const auto& r : t.rows) {
      std::vector<std::string> line(ncol, "-");
      for (size_t i = 0; i < r.size(); ++i) {
        if (!r[i].text.empty()) line[i] = md_escape(r[i].text);
        if (r[i].value) numeric[i] = true;
      }
      grid.push_back(line);
    }
    for (size_t i = 0; i < ncol && i < t.columns.size(); ++i) {
      if (t.columns[i].key) numeric[i] = false;
    }
    for (int i = 0; i < t.key_columns && i < static_cast<int>(ncol); ++i) numeric[i] = false;
    std::vector<size_t> width(ncol, 3);
    for (const auto& line : grid) {
      for (size_t i = 0; i < ncol; ++i) width[i] = std::max(width[i], display_width(line[i]));
    }
    auto emit = [&](const std::vector<std::string>& line) {
      os << "|";
      for (size_t i = 0; i < ncol; ++i) {
        std::string pad(width[i] - display_width(line[i]), ' ');
        os << " " << (numeric[i] ? pad + line[i] : line[i] + pad) << " |";
      }
      os << "\n";
    };
    emit(grid[0]);
    os << "|";
    for (size_t i = 0; i < ncol; ++i) {
      os << " " << (numeric[i] ? std::string(width[i] - 1, '-') + ":" : std::string(width[i], '-'))
         << " |";
    }
    os << "\n";
    for (size_t k = 1; k < grid.size(); ++k) emit(grid[k]);
  }
  return os.str();
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string render_csv(const std::vector<Table>& tables) {
  std::ostringstream os;
  auto line = [&](const std::vector<std::string>& fields) {
    for (size_t i = 0; i < fields.size(); ++i) os << (i ? "," : "") << csv_field(fields[i]);
    os << "\n";
  };
  for (size_t k = 0; k < tables.size(); ++k) {
    const auto& t = tables[k];
    // A single table is plain CSV; several are each introduced by "# title" and
    // separated by a blank line.
    if (tables.size() > 1) {
      if (k > 0) os << "\n";
      std::string title = t.title;
      std::replace(title.begin(), title.end(), '\n', ' ');
      os << "# " << title << "\n";
    }
    line(t.header);
    for (const auto& r : t.rows) {
      std::vector<std::string> f;
      for (const auto& c : r) f.push_back(c.text);
      line(f);
    }
  }
  return os.str();
}

OrderedJson cell_json(const TableCell& c) {
  OrderedJson j = OrderedJson::object();
  j["text"] = c.text;
  j["value"] = c.value ? OrderedJson(*c.value) : OrderedJson(nullptr);
  j["n"] = c.n;
  j["stddev"] = c.stddev;
  j["delta_pct"] = c.delta_pct ? OrderedJson(*c.delta_pct) : OrderedJson(nullptr);
  return j;
}

std::string render_json(const std::vector<Table>& tables) {
  OrderedJson out = OrderedJson::array();
  for (const auto& t : tables) {
    OrderedJson jt = OrderedJson::object();
    jt["title"] = t.title;
    jt["header"] = t.header;
    OrderedJson rows = OrderedJson::array();
    for (const auto& r : t.rows) {
      OrderedJson jr = OrderedJson::array();
      for (const auto& c : r) jr.push_back(cell_json(c));
      rows.push_back(std::move(jr));
    }
    jt["rows"] = std::move(rows);
    out.push_back(std::move(jt));
  }
  return out.dump(2, ' ', false, OrderedJson::error_handler_t::replace) + "\n";
}

}  // namespace

std::string format_number(double value, int digits, double scale, const std::string& suffix,
                          bool truncate) {
  double v = scale != 0 ? value / scale : value;
  std::string s;
  if (std::isnan(v)) {
    s = "nan";
  } else if (std::isinf(v)) {
    s = v > 0 ? "inf" : "-inf";
  } else if (digits < 0) {
    s = truncate ? round_decimal(v, 0, true) : auto_number(v);
  } else {
    s = round_decimal(v, digits, truncate);
  }
  return s + suffix;
}

std::string param_text(const Json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 1e15) return round_decimal(d, 0, false);
    return v.dump();
  }
  return canonical_json(v);
}

namespace {

Result<std::vector<Table>> build_tables_of(const Grid& grid, const std::vector<const ResultRow*>& rows) {
  std::vector<ReportSpec> specs = grid.reports;
  if (specs.empty()) specs = default_reports(grid);
  std::vector<Table> out;
  for (const auto& spec : specs) {
    auto t = build_one(spec, rows);
    if (!t.ok()) return t.error();
    out.push_back(std::move(t).value());
  }
  return out;
}

// with_outcomes without copying `rows`: pointers into `rows` and into `made`, which
// holds the outcome rows it makes.
std::vector<const ResultRow*> outcome_rows(const std::vector<ResultRow>& rows, const std::vector<StoredJob>& jobs,
                                           std::deque<ResultRow>* made) {
  std::unordered_map<std::string_view, std::vector<const ResultRow*>> by_job;
  std::unordered_map<std::string_view, std::unordered_set<std::string_view>> seen_by_kind;  // metrics real results of each kind have
  for (const auto& r : rows) {
    by_job[r.hash].push_back(&r);
    seen_by_kind[r.kind].insert(r.metric);
  }
  std::vector<const ResultRow*> out;
  out.reserve(rows.size());
  std::unordered_set<std::string_view> placed, job_hashes;
  for (const StoredJob& j : jobs) {
    job_hashes.insert(j.hash);
    if (auto it = by_job.find(j.hash); it != by_job.end()) {
      if (!placed.insert(j.hash).second) continue;
      out.insert(out.end(), it->second.begin(), it->second.end());
      continue;
    }
    if (!ended_without_success(j)) continue;
    const engine::JobKind* kind = engine::find_job_kind(j.kind);
    if (kind == nullptr) continue;
    // The metrics its cells would hold: those the kind's results here have, or
    // (when none succeeded) every metric the kind may report.
    auto seen = seen_by_kind.find(j.kind);
    SharedJson params = j.params.is_null() ? Json::parse(j.params_json, nullptr, false) : j.params;
    for (const auto& m : kind->metrics) {
      if (seen != seen_by_kind.end() && !seen->second.count(m)) continue;
      ResultRow& r = made->emplace_back();
      r.job_id = j.id;
      r.hash = j.hash;
      r.kind = j.kind;
      r.params = params;
      r.repeat = j.repeat;
      r.metric = m;
      r.text = std::string(state_name(j.state));
      out.push_back(&r);
    }
  }
  for (const auto& r : rows) {
    if (!placed.count(r.hash) && !job_hashes.count(r.hash)) out.push_back(&r);  // a result of a job not in `jobs`
  }
  return out;
}

}  // namespace

bool ended_without_success(const StoredJob& job) {
  return job.state == JobState::kFailed || job.state == JobState::kTimeout || job.state == JobState::kOom ||
         job.state == JobState::kInvalid;
}

Result<std::vector<Table>> build_tables(const Grid& grid, const std::vector<ResultRow>& rows) {
  std::vector<const ResultRow*> all;
  all.reserve(rows.size());
  for (const ResultRow& r : rows) all.push_back(&r);
  return build_tables_of(grid, all);
}

std::vector<ResultRow> with_outcomes(const std::vector<ResultRow>& rows, const std::vector<StoredJob>& jobs) {
  std::deque<ResultRow> made;
  std::vector<ResultRow> out;
  for (const ResultRow* r : outcome_rows(rows, jobs, &made)) out.push_back(*r);
  return out;
}

Table failures_table(const std::vector<StoredJob>& jobs) {
  Table t;
  t.title = "Failed jobs (failed, timeout, oom, invalid)";
  t.job_failures = true;
  t.header = {"job", "kind", "state", "attempts", "parameters", "error"};
  for (const std::string& h : t.header) {
    TableColumn c;
    c.name = c.label = h;
    t.columns.push_back(c);
  }
  for (const StoredJob& j : jobs) {
    if (!ended_without_success(j)) continue;
    auto cell = [](std::string text) {
      TableCell c;
      c.text = std::move(text);
      return c;
    };
    // The error on one line, its first kErrorChars: the whole text is in the
    // database (v_jobs.error) and in `gridbench status GRID`.
    constexpr size_t kErrorChars = 400;
    std::string error;
    for (char ch : j.error) {
      if (ch == '\n' || ch == '\r' || ch == '\t') ch = ' ';
      if (ch == ' ' && !error.empty() && error.back() == ' ') continue;
      error += ch;
    }
    while (!error.empty() && error.back() == ' ') error.pop_back();
    if (error.size() > kErrorChars) error = error.substr(0, kErrorChars - 3) + "...";
    t.rows.push_back({cell(j.hash), cell(j.kind), cell(std::string(state_name(j.state))),
                      cell(std::to_string(j.attempts) + "/" + std::to_string(j.max_attempts)),
                      cell(j.params.is_null() ? j.params_json : canonical_json(j.params)), cell(error)});
  }
  return t;
}

Result<std::vector<Table>> build_tables(const Grid& grid, const std::vector<ResultRow>& rows,
                                        const std::vector<StoredJob>& jobs) {
  std::deque<ResultRow> made;
  Result<std::vector<Table>> tables = build_tables_of(grid, outcome_rows(rows, jobs, &made));
  if (!tables.ok()) return tables;
  Table failures = failures_table(jobs);
  if (!failures.rows.empty()) tables->push_back(std::move(failures));
  return tables;
}

Result<TableFormat> parse_table_format(const std::string& s) {
  if (s == "md" || s == "markdown") return TableFormat::kMarkdown;
  if (s == "csv") return TableFormat::kCsv;
  if (s == "json") return TableFormat::kJson;
  return Error{"unknown table format '" + s + "': expected one of md, markdown, csv, json"};
}

std::string render_tables(const std::vector<Table>& tables, TableFormat format) {
  switch (format) {
    case TableFormat::kMarkdown:
      return render_markdown(tables);
    case TableFormat::kCsv:
      return render_csv(tables);
    case TableFormat::kJson:
      return render_json(tables);
  }
  return "";
}

}  // namespace gb::coord

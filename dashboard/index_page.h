// The index of every grid in a database: one sortable row per grid with its
// name (linking to its page), title (the grid's description), job counts by
// state, last update and the devices its results came from. One self-contained
// HTML file like the grid pages; what goes in a row is the caller's.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace gb::dash {

struct IndexEntry {
  std::string name;
  std::string title;                        // the grid's description ("" : none)
  std::string href;                         // its page, relative to the index ("" : not written)
  std::string error;                        // why its page was not written
  int64_t total = 0;
  std::map<std::string, int64_t> by_state;  // state name -> jobs
  int64_t updated_ms = 0;
  std::set<std::string> devices;            // device_label of its results
};

std::string render_index_page(const std::vector<IndexEntry>& grids, const std::string& db_path);

}  // namespace gb::dash

// The HTML every dashboard page shares: escaping, the page skeleton (head with
// the inline style sheet and a Content-Security-Policy that lets nothing load
// from anywhere, the small inline script that sorts tables and toggles plot
// lines), and a few formatting helpers. Not the pages' content (grid_page,
// index_page) nor the plots (dashboard/plots/).
//
// Every string that comes from a grid, a result or the store goes through
// html_escape; the script reads only the DOM, never data of its own, and the
// pages read fully without it (tables in their stored order, every line shown).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace gb::dash {

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(std::string_view s);

// <!DOCTYPE html> up to and including <main>, titled `title` (escaped here).
std::string page_open(std::string_view title);
// The footer, the inline script and the closing tags.
std::string page_close();

// The inline script and style sheet, for tests and for pages that embed them.
std::string_view page_script();
std::string_view page_css();

// The most rows a table on a grid page shows (report tables, failed jobs, all
// jobs) and the most values listed for an axis, so that the page of a big grid
// stays a few MB; each capped table says so and links the file beside the page
// that holds all of it (report.csv / report.json, jobs.csv).
inline constexpr size_t kMaxPageRows = 500;
inline constexpr size_t kMaxAxisValues = 50;
// "<p class="note">The first N of M ROWS_NAME; all of them: <a>file</a>, ...</p>".
std::string capped_note(size_t shown, size_t total, std::string_view rows_name,
                        std::initializer_list<std::string_view> files);

// "2025-01-31 14:05 UTC" for milliseconds since the epoch; "" for 0.
std::string format_time_ms(int64_t ms);

// A number for a data-v attribute (sort key): shortest round-trip form.
std::string sort_value(double v);

}  // namespace gb::dash

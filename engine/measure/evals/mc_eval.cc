// MMLU prompts and the three scorings (engine/measure/evals/mc_eval.h).
#include "engine/measure/evals/mc_eval.h"

#include <cctype>
#include <cmath>

namespace gb::engine {
namespace {

constexpr const char* kLetters[4] = {"A", "B", "C", "D"};

// The first index of the largest value.
int argmax(const std::vector<double>& v) {
  int best = 0;
  for (int i = 1; i < static_cast<int>(v.size()); ++i)
    if (v[static_cast<size_t>(i)] > v[static_cast<size_t>(best)]) best = i;
  return best;
}

// 004's parse: the first character after stripping whitespace, upper-cased; -1
// when there is none or it is no letter A..D.
int parse_generated_letter(const std::string& text) {
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return u >= 'A' && u <= 'D' ? u - 'A' : -1;
  }
  return -1;
}

}  // namespace

void McTally::add(const McTally& o) {
  n += o.n;
  letter += o.letter;
  generate += o.generate;
  choice_text += o.choice_text;
  choice_sum += o.choice_sum;
}

std::string mmlu_example(const McQuestion& q, bool include_answer) {
  std::string s = q.question;
  for (int j = 0; j < 4; ++j) s += std::string("\n") + kLetters[j] + ". " + q.choices[static_cast<size_t>(j)];
  s += "\nAnswer:";
  if (include_answer) s += std::string(" ") + kLetters[q.answer] + "\n\n";
  return s;
}

std::string mmlu_header(const std::string& subject) {
  return "The following are multiple choice questions (with answers) about" + mmlu_subject_text(subject) + ".\n\n";
}

std::string mmlu_prompt(const std::string& subject, const std::vector<McQuestion>& shots, const McQuestion& q) {
  std::string s = mmlu_header(subject);
  for (const McQuestion& e : shots) s += mmlu_example(e, true);
  return s + mmlu_example(q, false);
}

std::string choice_text_context(const std::string& subject, const std::vector<McQuestion>& shots,
                                const McQuestion& q, bool continuation) {
  std::string s;
  if (continuation) {
    for (const McQuestion& e : shots) s += e.question + " " + e.choices[static_cast<size_t>(e.answer)] + "\n\n";
    return s + q.question;
  }
  s = mmlu_header(subject);
  for (const McQuestion& e : shots) s += e.question + "\nAnswer: " + e.choices[static_cast<size_t>(e.answer)] + "\n\n";
  return s + q.question + "\nAnswer:";
}

double accuracy_stderr(double p, int64_t n) {
  return n > 0 ? std::sqrt(p * (1 - p) / static_cast<double>(n)) : 0.0;
}

Result<McResult> run_mc(const std::vector<McSubject>& subjects, const McOptions& o, ScoringModel& model,
                        const ProgressFn& progress) {
  McResult result;
  int64_t total = 0, done = 0;
  for (const McSubject& s : subjects) {
    const int64_t n = static_cast<int64_t>(s.split(o.split).size());
    total += o.limit > 0 ? std::min(n, o.limit) : n;
  }
  for (const McSubject& s : subjects) {
    const std::vector<McQuestion>& asked = s.split(o.split);
    if (asked.empty()) return Error{"subject " + s.name + ": no " + o.split + " questions (" + o.split + "/" + s.name + "_" + o.split + ".csv)"};
    if (static_cast<int64_t>(s.dev.size()) < o.shots)
      return Error{"subject " + s.name + ": " + std::to_string(o.shots) + " shots asked, but its dev split has " +
                   std::to_string(s.dev.size()) + " questions"};
    const std::vector<McQuestion> shots(s.dev.begin(), s.dev.begin() + o.shots);
    McSubjectResult r{s.name, {}};
    const size_t count = o.limit > 0 ? std::min(asked.size(), static_cast<size_t>(o.limit)) : asked.size();
    for (size_t i = 0; i < count; ++i) {
      const McQuestion& q = asked[i];
      const std::string where = q.file + ":" + std::to_string(q.line) + ": ";
      ++r.tally.n;
      if (o.letter || o.generate) {
        const std::string prompt = mmlu_prompt(s.name, shots, q);
        if (o.letter) {
          Result<std::vector<double>> ll = model.loglikelihoods(prompt, {" A", " B", " C", " D"});
          if (!ll) return Error{where + ll.message()};
          r.tally.letter += argmax(*ll) == q.answer;
        }
        if (o.generate) {
          Result<Generation> g = model.greedy(prompt, o.max_new_tokens, [](const std::string& t) {
            return t.find_first_not_of(" \t\n\r\f\v") != std::string::npos;  // the first character decides
          });
          if (!g) return Error{where + g.message()};
          r.tally.generate += parse_generated_letter(g->text) == q.answer;
        }
      }
      if (o.choice_text) {
        const std::string context = choice_text_context(s.name, shots, q, o.continuation_prompt);
        std::vector<std::string> conts;
        for (const std::string& c : q.choices) conts.push_back(" " + c);
        Result<std::vector<double>> ll = model.loglikelihoods(context, conts);
        if (!ll) return Error{where + ll.message()};
        std::vector<double> norm = *ll;
        for (size_t j = 0; j < 4; ++j) norm[j] /= static_cast<double>(conts[j].size());
        r.tally.choice_sum += argmax(*ll) == q.answer;
        r.tally.choice_text += argmax(norm) == q.answer;
      }
      ++done;
      if (progress && (done % 10 == 0 || done == total))
        progress(static_cast<double>(done) / static_cast<double>(std::max<int64_t>(total, 1)),
                 std::to_string(done) + "/" + std::to_string(total) + " questions");
    }
    result.overall.add(r.tally);
    result.subjects.push_back(std::move(r));
  }
  return result;
}

}  // namespace gb::engine

// Multiple-choice evaluation on MMLU-layout subjects (engine/jobs/datasets/mmlu.h):
// the prompts as the original MMLU harness (Hendrycks et al., evaluate.py) writes
// them, and three ways of scoring, over any ScoringModel:
//
//   letter       argmax of log p(" A" | prompt) .. log p(" D" | prompt), the prompt
//                ending "Answer:" (reference 004's "direct")
//   generate     greedy generation after the same prompt; the answer is its first
//                non-space character, upper-cased (004's output.strip()[0].upper())
//   choice_text  argmax of log p(" " + choice | context) / bytes(" " + choice)
//                (lm-evaluation-harness' acc_norm, normalised by bytes); choice_sum,
//                the same without the division (its acc), comes with it
//
// Ties go to the first choice (numpy's argmax). The prompt: "The following are
// multiple choice questions (with answers) about SUBJECT.\n\n", then `shots`
// examples of the subject's dev split "QUESTION\nA. ..\nB. ..\nC. ..\nD. ..\nAnswer:
// X\n\n", then the question without its answer. choice_text's context lists no
// choices: with the mmlu prompt the same header, shots "QUESTION\nAnswer: TEXT\n\n"
// and "QUESTION\nAnswer:"; with the continuation prompt no header, shots
// "QUESTION TEXT\n\n" and the question itself, which the choice continues.
// Not here: loading the CSV files, running a model.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "engine/jobs/datasets/mmlu.h"
#include "engine/jobs/job_output.h"
#include "engine/measure/evals/scoring_model.h"

namespace gb::engine {

struct McOptions {
  bool letter = true, generate = true, choice_text = true;
  bool continuation_prompt = false;  // choice_text's context: the continuation form
  int64_t shots = 5;
  int64_t limit = 0;             // questions per subject; 0: all
  std::string split = "test";    // "test" or "val"
  int64_t max_new_tokens = 8;    // generate
};

// Questions answered right by each scoring, of n asked.
struct McTally {
  int64_t n = 0;
  int64_t letter = 0, generate = 0, choice_text = 0, choice_sum = 0;
  void add(const McTally& o);
};

struct McSubjectResult {
  std::string subject;
  McTally tally;
};

struct McResult {
  std::vector<McSubjectResult> subjects;
  McTally overall;
};

// The original harness' pieces (format_example, gen_prompt).
std::string mmlu_example(const McQuestion& q, bool include_answer);
std::string mmlu_header(const std::string& subject);
std::string mmlu_prompt(const std::string& subject, const std::vector<McQuestion>& shots, const McQuestion& q);
// choice_text's context for `q` (see above).
std::string choice_text_context(const std::string& subject, const std::vector<McQuestion>& shots,
                                const McQuestion& q, bool continuation);

// Asks every question of each subject's split (at most `limit`) with the first
// `shots` dev questions as examples. Errors: a subject without enough dev
// questions for the shots or without questions in the split, a model error.
Result<McResult> run_mc(const std::vector<McSubject>& subjects, const McOptions& options, ScoringModel& model,
                        const ProgressFn& progress = nullptr);

// The standard error of an accuracy p over n questions: sqrt(p (1 - p) / n).
double accuracy_stderr(double p, int64_t n);

}  // namespace gb::engine

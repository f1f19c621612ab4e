#include "cli/commands.h"

int main(int argc, char** argv) { return gb::cli::run_cli(argc, argv); }

#include "cli/cli.hpp"

int main(int argc, char** argv) {
  return sattn::run_tool(*sattn::find_tool("run-rvv"), "sattn-run-rvv", argc, argv);
}

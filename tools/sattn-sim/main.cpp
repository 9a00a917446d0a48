#include "cli/cli.hpp"

int main(int argc, char** argv) {
  return sattn::run_tool(*sattn::find_tool("sim"), "sattn-sim", argc, argv);
}

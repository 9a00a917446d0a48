#include "cli/cli.hpp"

int main(int argc, char** argv) {
  return sattn::run_tool(*sattn::find_tool("model"), "sattn-model", argc, argv);
}

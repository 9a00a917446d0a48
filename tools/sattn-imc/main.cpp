#include "cli/cli.hpp"

int main(int argc, char** argv) {
  return sattn::run_tool(*sattn::find_tool("imc"), "sattn-imc", argc, argv);
}

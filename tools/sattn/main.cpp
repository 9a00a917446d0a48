// sattn: the umbrella. Every tool runs in-process through libsattn's tool table.
#include "cli/cli.hpp"

int main(int argc, char** argv) { return sattn::umbrella_main(argc, argv); }

// sattn-opt: mlir-opt with the sattn dialect and passes (sattn-opt(1)).
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "sattn-mlir/Sattn.h"
#include "sattn_git_revision.h"

int main(int argc, char** argv) {
  // --version: LLVM's lines, then sattn's ("sattn-opt 0.1.0 (git 0123456789ab)", as every tool).
  llvm::cl::AddExtraVersionPrinter([](llvm::raw_ostream& os) {
    const char* rev = SATTN_GIT_REVISION;
    os << "sattn-opt " << SATTN_OPT_VERSION;
    if (*rev) os << " (git " << rev << ")";
    os << "\n";
  });
  mlir::DialectRegistry registry;
  registry.insert<sattn_mlir::SattnDialect>();
  sattn_mlir::registerSattnPasses();
  sattn_mlir::registerSattnPipelines();
  return mlir::asMainReturnCode(mlir::MlirOptMain(argc, argv, "sattn-opt: the sattn MLIR dialect and passes\n", registry));
}

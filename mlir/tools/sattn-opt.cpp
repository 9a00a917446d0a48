// sattn-opt: mlir-opt with the sattn dialect and passes (sattn-opt(1)).
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "sattn-mlir/Sattn.h"

int main(int argc, char** argv) {
  mlir::DialectRegistry registry;
  registry.insert<sattn_mlir::SattnDialect>();
  sattn_mlir::registerSattnPasses();
  sattn_mlir::registerSattnPipelines();
  return mlir::asMainReturnCode(mlir::MlirOptMain(argc, argv, "sattn-opt: the sattn MLIR dialect and passes\n", registry));
}

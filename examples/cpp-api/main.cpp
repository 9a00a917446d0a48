// A program outside the tree that uses the installed C++ API (find_package(sattn) -> sattn::sattn):
// read an op, select a spec, build the layout, run it on the CPU and check it against the reference.
//   usage: sattn-api-example OP_FILE
#include <cstdio>

#include <sattn/sattn.hpp>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OP_FILE\n", argv[0]);
    return 2;
  }
  try {
    for (const sattn::Op& op : sattn::read_ops(argv[1])) {
      const sattn::Plan plan = sattn::select_spec(op, sattn::resolve_select_request({}));
      const sattn::QKV data = sattn::read_qkv(plan.op, std::nullopt);  // the seeded synthetic data
      const sattn::Layout layout = sattn::build_layout(plan.op, plan.spec, plan.params, &data.q, &data.k);
      const sattn::Tensor out = sattn::fast_attention(plan.op, layout, data.q, data.k, data.v);
      const sattn::Tensor ref = sattn::reference_attention(plan.op, layout, data.q, data.k, data.v);
      const sattn::ErrorStats err = sattn::compare(out, ref);
      const double tol = sattn::tolerance(plan.op.precision);
      std::printf("%s: spec %s, density %.4f, max_rel_error %.3g (tolerance %.0e): %s\n", op.name.c_str(),
                  std::string(sattn::to_string(plan.spec)).c_str(), layout.density(), err.max_rel, tol,
                  err.finite && err.max_rel <= tol ? "ok" : "FAILED");
      if (!(err.finite && err.max_rel <= tol)) return 5;
    }
  } catch (const sattn::Error& e) {
    std::fprintf(stderr, "sattn-api-example: error: %s\n", e.what());
    return int(e.code());
  }
  std::printf("libsattn %s\n", sattn::version());
  return 0;
}

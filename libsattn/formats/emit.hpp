// Artifacts (DESIGN §4): the layout arrays, indices.txt, indices.desc and, for data-dependent
// specs, the Q/K/V used; described by a sattn.artifacts/v1 envelope.
#pragma once
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "sattn/layout.hpp"
#include "formats/data.hpp"
#include "support/io.hpp"
#include "sattn/plan.hpp"

namespace sattn {

struct EmitOptions {
  std::string out_dir;              // receives every file
  std::string stem = "indices";     // indices.txt / indices.desc (--out-stem)
  DataSource data;                  // --data DIR or --seed N
  StageOptions stage;               // replace (--force) or add to (--out-stem) an existing out_dir
};

// Builds the plan's layout (streaming where the spec allows: memory proportional to nnz) and
// writes the artifact files atomically into options.out_dir. Returns the envelope, whose paths
// are relative to out_dir.
nlohmann::json emit_artifacts(const Plan&, const EmitOptions&);

// What a backend needs, read back from an envelope file (paths resolved against its directory).
struct Artifacts {
  Plan plan;
  Layout layout;
  std::optional<QKV> data;  // present when the artifacts carry q/k/v
  std::string dir;
};
Artifacts read_artifacts(const std::string& envelope_path);
// Whether a spec's layout is computed from Q/K (landmark needs data only to refine landmarks).
bool layout_uses_data(Spec spec, const SpecParams& params);

}  // namespace sattn

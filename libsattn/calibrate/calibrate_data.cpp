// The samples sattn-calibrate calibrates on: --data directories (or globs), else synthetic.
#include <glob.h>

#include <algorithm>
#include <filesystem>

#include "calibrate/calibrate.hpp"
#include "formats/data.hpp"

namespace sattn {

namespace {

bool is_pattern(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

void require_nonzero(const Tensor& t, const std::string& dir, const char* file) {
  if (std::any_of(t.data.begin(), t.data.end(), [](float x) { return x != 0.0f; })) return;
  throw_input_error({(std::filesystem::path(dir) / file).string()},
                    "every value is zero: no scale can be derived from it; calibrate on real activations");
}

}  // namespace

std::vector<std::string> expand_data_dirs(const std::vector<std::string>& args) {
  std::vector<std::string> dirs;
  for (const std::string& arg : args) {
    if (!is_pattern(arg) || std::filesystem::is_directory(arg)) {
      dirs.push_back(arg);
      continue;
    }
    glob_t g{};
    const int rc = glob(arg.c_str(), GLOB_ONLYDIR, nullptr, &g);
    std::vector<std::string> matched;
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i)
        if (std::filesystem::is_directory(g.gl_pathv[i])) matched.emplace_back(g.gl_pathv[i]);
    globfree(&g);
    if (matched.empty()) throw Error(ExitCode::usage, "--data '" + arg + "' matches no directory");
    dirs.insert(dirs.end(), matched.begin(), matched.end());  // glob() sorts them
  }
  return dirs;
}

std::vector<QKV> load_calibration_samples(const Op& op, const std::vector<std::string>& dirs, uint64_t seed,
                                          DataLayout layout) {
  std::vector<QKV> samples;
  if (dirs.empty()) {
    DataSource src;
    src.seed = seed;
    samples.push_back(load_qkv(op, src));
    return samples;
  }
  for (const std::string& dir : dirs) {
    DataSource src;
    src.dir = dir;
    src.layout = layout;
    QKV s = load_qkv(op, src);
    require_nonzero(s.q, dir, "q.npy");
    require_nonzero(s.k, dir, "k.npy");
    require_nonzero(s.v, dir, "v.npy");
    samples.push_back(std::move(s));
  }
  return samples;
}

}  // namespace sattn

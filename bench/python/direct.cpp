// The C++ side of the Python-overhead benchmark (bench/python/bench.py): the same work as one
// `sattn.attention_forward` + `sattn.attention_backward` call pair, made directly through the
// public C++ API (include/sattn only). Reads the op and the data bench.py wrote:
//   sattn-bench-python-direct OP.json DATA_DIR DOUT_DIR SPEC REPS THREADS
// DATA_DIR holds q/k/v.npy; DOUT_DIR holds dout as q.npy (beside k/v.npy, as read_qkv wants).
// Prints one JSON line: per-rep seconds of layout+forward+backward, and the allowed pairs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "sattn/sattn.hpp"

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: %s OP.json DATA_DIR DOUT_DIR SPEC REPS THREADS\n", argv[0]);
    return 2;
  }
  try {
    const sattn::Op op = sattn::read_ops(argv[1]).at(0);
    const sattn::Spec spec = sattn::spec_option("spec", argv[4]);
    const int reps = std::atoi(argv[5]);
    sattn::FastOptions fo;
    fo.threads = std::atoi(argv[6]);
    const sattn::SpecParams params = sattn::resolve_params(op, spec);
    const sattn::QKV data = sattn::read_qkv(op, std::string(argv[2]));
    const sattn::Tensor dout = sattn::read_qkv(op, std::string(argv[3])).q;
    const auto& s = op.shape;
    std::vector<double> times;
    int64_t pairs = 0;
    double checksum = 0;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      // Fresh outputs every call, as the Python functions return new arrays.
      sattn::Tensor out(s.batch, s.heads, s.seq_len, s.head_dim), dq(s.batch, s.heads, s.seq_len, s.head_dim);
      sattn::Tensor dk(s.batch, s.kv_heads, s.kv_len, s.head_dim), dv(s.batch, s.kv_heads, s.kv_len, s.head_dim);
      std::vector<float> lse(static_cast<size_t>(s.batch * s.heads * s.seq_len));
      const sattn::Layout layout = sattn::build_layout(op, spec, params, data.q, data.k);
      sattn::fast_attention_into(op, layout, data.q, data.k, data.v, out, lse.data(), fo);
      sattn::fast_attention_backward(op, layout, data.q, data.k, data.v, out, dout, lse.data(), dq, dk, dv, fo);
      const auto t1 = std::chrono::steady_clock::now();
      times.push_back(std::chrono::duration<double>(t1 - t0).count());
      checksum = dq.data[0] + dq.data[dq.data.size() / 2];
      pairs = 0;
      for (int64_t b = 0; b < s.batch; ++b)
        for (int64_t h = 0; h < s.kv_heads; ++h) pairs += layout.allowed_pairs(b, h) * s.group_size();
    }
    std::printf("{\"times\": [");
    for (size_t i = 0; i < times.size(); ++i) std::printf("%s%.6f", i ? ", " : "", times[i]);
    std::printf("], \"allowed_pairs\": %lld, \"checksum_dq\": %.9g}\n", static_cast<long long>(pairs), checksum);
    return 0;
  } catch (const sattn::Error& e) {
    std::fprintf(stderr, "sattn-bench-python-direct: error: %s\n", e.what());
    return static_cast<int>(e.kind());
  }
}

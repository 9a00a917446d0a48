// IMC reports: an attention op sparse against dense, and a plain GEMM (for calibration).
#include "sattn/error.hpp"
#include "backends/imc/imc.hpp"
#include "core/quant_scheme.hpp"

namespace sattn {

std::optional<ImcScheme> imc_scheme(const Op& op, const ImcParams& p) {
  if (op.precision != Precision::i8 && op.precision != Precision::i4) return std::nullopt;
  const QuantScheme s = quant_scheme_of(op);
  if (s.is_per_tensor()) return std::nullopt;
  ImcScheme z;
  const int qk_bits = imc_weight_bits(op.precision, p);
  z.pv_weight_bits = p.weight_bits > 0 ? p.weight_bits : s.pv == PvPrecision::fix16 ? 16 : s.pv == PvPrecision::i8 ? 8 : qk_bits;
  z.pv_input_bits = p.input_bits > 0 ? p.input_bits : s.pv == PvPrecision::fix16 ? 16 : s.pv == PvPrecision::i8 ? 8 : imc_input_bits(op.precision, p);
  z.k_scales = s.k != ScaleGranularity::tensor && s.k != ScaleGranularity::head;
  z.q_scales = s.q != ScaleGranularity::tensor && s.q != ScaleGranularity::head;
  z.v_channel = s.v == VGranularity::channel;
  z.p_round = s.pv != PvPrecision::fp32;
  z.smooth_k = s.smooth_k;
  z.rotate = s.rotate;
  z.mean_block = s.smooth_q ? s.block : 0;
  const int64_t kv = op.shape.kv_len;
  z.k_groups = s.k == ScaleGranularity::token ? kv : s.k == ScaleGranularity::block ? (kv + s.block - 1) / s.block : 1;
  return z;
}

ImcOpReport imc_attention(const Op& op, const Layout& sparse, const Layout& dense, const ImcParams& p) {
  ImcOpReport r;
  r.input_bits = imc_input_bits(op.precision, p);
  r.weight_bits = imc_weight_bits(op.precision, p);
  // K and V change with every op: either they are programmed into the configured cells, or
  // they live in SRAM-IMC arrays (1-bit cells).
  ImcParams mapped = p;
  r.kv_cell = p.kv_placement == KvPlacement::sram ? ImcCell::sram : p.cell;
  if (r.kv_cell == ImcCell::sram && p.cell != ImcCell::sram) {
    mapped.cell = ImcCell::sram;
    mapped.cell_bits = 1;
    r.notes.push_back("kv_placement = sram: K and V are held in 1-bit SRAM-IMC arrays, not in the " +
                      std::string(to_string(p.cell)) + " cells");
  }
  validate(mapped, r.weight_bits);
  r.scheme = imc_scheme(op, p);
  if (r.scheme) {
    r.scheme_name = to_string(quant_scheme_of(op));
    validate(mapped, r.scheme->pv_weight_bits);
  }
  if (op.precision == Precision::fp32 || op.precision == Precision::bf16)
    r.notes.push_back("precision " + std::string(to_string(op.precision)) +
                      " is mapped as 8-bit fixed point (crossbars compute on integers)");
  r.notes.push_back("softmax and normalization run in a digital unit that is not modelled");
  const ImcScheme* z = r.scheme ? &*r.scheme : nullptr;
  r.sparse = imc_cost(map_attention(op, sparse, mapped, r.input_bits, r.weight_bits, z).total, mapped, r.kv_cell);
  r.dense = imc_cost(map_attention(op, dense, mapped, r.input_bits, r.weight_bits, z).total, mapped, r.kv_cell);
  if (z) {
    r.sparse_per_tensor = imc_cost(map_attention(op, sparse, mapped, r.input_bits, r.weight_bits).total, mapped, r.kv_cell);
    r.notes.push_back("quant_scheme " + r.scheme_name +
                      ": scale multiplies, the mean-Q vectors and P.V at the scheme's precision are costed "
                      "(quant section); computing dynamic scales (absmax), as for per-tensor, is not");
  }
  r.density = sparse.density();
  r.dense_density = dense.density();
  return r;
}

ImcGemmReport imc_gemm(int64_t m, int64_t k, int64_t n, const ImcParams& p) {
  if (m < 1 || k < 1 || n < 1) throw Error(ExitCode::invalid_input, "--gemm M,K,N needs positive sizes");
  ImcGemmReport r;
  r.m = m;
  r.k = k;
  r.n = n;
  r.input_bits = p.input_bits > 0 ? p.input_bits : 8;
  r.weight_bits = p.weight_bits > 0 ? p.weight_bits : 8;
  validate(p, r.weight_bits);
  r.cost = imc_cost(map_gemm(m, k, n, p, r.input_bits, r.weight_bits), p, p.cell);
  return r;
}

}  // namespace sattn

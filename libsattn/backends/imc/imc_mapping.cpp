// IMC mapping: matrices onto crossbar sub-arrays, and the events each input vector causes.
//
// A matrix of k_rows x n_out weights is tiled into sub-arrays of `rows` rows and
// cols / cells_per_weight outputs. An input vector drives, bit-serially, the rows it has nonzero
// entries on, `parallel_rows` at a time (one step per group of parallel rows that holds a driven
// row, per input bit); after each step the ADCs convert the columns of the outputs the vector
// needs. A sub-array none of whose rows or outputs the vector needs is not activated at all.
#include <algorithm>
#include <cmath>

#include "sattn/error.hpp"
#include "backends/imc/imc.hpp"
#include "support/process.hpp"

namespace sattn {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int ceil_log2(int64_t v) {
  int b = 0;
  while ((int64_t(1) << b) < v) ++b;
  return b;
}

// Counts, per tile of `tile` indices, how many indices of `ranges` fall in it and how many
// distinct groups of `group` consecutive indices (aligned within the tile) they touch.
// `touched` lists the tiles with a nonzero count, ascending.
void count_tiles(const std::vector<IndexRange>& ranges, int64_t tile, int64_t group, std::vector<int64_t>& count,
                 std::vector<int64_t>* groups, std::vector<int64_t>& touched) {
  int64_t last_tile = -1, last_group = -1;
  for (const IndexRange& r : ranges) {
    int64_t lo = r.lo;
    while (lo < r.hi) {
      const int64_t t = lo / tile;
      const int64_t hi = std::min(r.hi, (t + 1) * tile);
      if (t != last_tile) {
        touched.push_back(t);
        last_tile = t;
        last_group = -1;
      }
      count[size_t(t)] += hi - lo;
      if (groups) {
        const int64_t g0 = (lo - t * tile) / group, g1 = (hi - 1 - t * tile) / group;
        (*groups)[size_t(t)] += std::max<int64_t>(0, g1 - std::max(g0, last_group + 1) + 1);
        last_group = std::max(last_group, g1);
      }
      lo = hi;
    }
  }
}

// Counts of units that run side by side (different sub-arrays): events add, the critical path is
// the slower of the two.
void merge_parallel(ImcCounts& into, const ImcCounts& c) {
  const double read = into.critical_read_ns, adc = into.critical_adc_ns;
  const int64_t wrows = into.critical_write_rows;
  ImcCounts sum = into;
  sum.add(c);
  if (c.critical_read_ns + c.critical_adc_ns > read + adc) {
    sum.critical_read_ns = c.critical_read_ns;
    sum.critical_adc_ns = c.critical_adc_ns;
  } else {
    sum.critical_read_ns = read;
    sum.critical_adc_ns = adc;
  }
  sum.critical_write_rows = std::max(wrows, c.critical_write_rows);
  into = sum;
}

}  // namespace

void ImcCounts::add(const ImcCounts& o) {
  arrays_allocated += o.arrays_allocated;
  array_activations += o.array_activations;
  row_activations += o.row_activations;
  cell_reads += o.cell_reads;
  adc_conversions += o.adc_conversions;
  shift_adds += o.shift_adds;
  partial_sum_adds += o.partial_sum_adds;
  buffer_bits += o.buffer_bits;
  interconnect_bits += o.interconnect_bits;
  cells_written += o.cells_written;
  macs += o.macs;
  scale_multiplies += o.scale_multiplies;
  scale_adds += o.scale_adds;
  scale_bits += o.scale_bits;
  mean_vectors += o.mean_vectors;
  // The phases run one after another; all sub-arrays are written together before either.
  critical_read_ns += o.critical_read_ns;
  critical_adc_ns += o.critical_adc_ns;
  critical_write_rows = std::max(critical_write_rows, o.critical_write_rows);
}

CrossbarMapping::CrossbarMapping(const ImcParams& p, const ImcFigures& f, int64_t k_rows, int64_t n_out, int input_bits,
                                 int weight_bits)
    : p_(p), f_(f), k_rows_(k_rows), n_out_(n_out), input_bits_(input_bits), weight_bits_(weight_bits) {
  if (k_rows < 1 || n_out < 1) throw Error(ExitCode::invalid_input, "a crossbar matrix needs at least one row and one output");
  cells_per_weight_ = (weight_bits + p.cell_bits - 1) / p.cell_bits;
  outs_per_array_ = p.cols / cells_per_weight_;
  if (outs_per_array_ < 1) throw Error(ExitCode::invalid_input, "a weight does not fit in one sub-array row");
  adcs_per_array_ = ceil_div(p.cols, p.cols_per_adc);
  // A dot product over k_rows inputs: input + weight bits plus the carries of k_rows additions.
  psum_bits_ = input_bits + weight_bits + ceil_log2(k_rows);
  row_tiles_ = ceil_div(k_rows, p.rows);
  col_tiles_ = ceil_div(n_out, outs_per_array_);
  const size_t arrays = size_t(row_tiles_ * col_tiles_);
  allocated_.assign(arrays, 0);
  written_rows_.assign(arrays, 0);
  busy_read_ns_.assign(arrays, 0);
  busy_adc_ns_.assign(arrays, 0);
  rows_in_tile_.assign(size_t(row_tiles_), 0);
  groups_in_tile_.assign(size_t(row_tiles_), 0);
  outs_in_tile_.assign(size_t(col_tiles_), 0);
  stored_outs_.assign(size_t(col_tiles_), 0);
}

void CrossbarMapping::store(const std::vector<IndexRange>& rows, const std::vector<IndexRange>& outs,
                            bool charge_writes) {
  std::vector<int64_t> rcount(size_t(row_tiles_), 0), ocount(size_t(col_tiles_), 0), rt, ot;
  count_tiles(rows, p_.rows, p_.parallel(), rcount, nullptr, rt);
  count_tiles(outs, outs_per_array_, 1, ocount, nullptr, ot);
  for (int64_t c : ot) stored_outs_[size_t(c)] = std::max(stored_outs_[size_t(c)], ocount[size_t(c)]);
  for (int64_t r : rt)
    for (int64_t c : ot) {
      const size_t a = size_t(r * col_tiles_ + c);
      allocated_[a] = 1;
      if (charge_writes) {
        c_.cells_written += double(rcount[size_t(r)]) * double(ocount[size_t(c)]) * cells_per_weight_;
        written_rows_[a] = std::max(written_rows_[a], rcount[size_t(r)]);
      }
    }
}

void CrossbarMapping::apply(const std::vector<IndexRange>& rows, const std::vector<IndexRange>& outs, int64_t repeat) {
  std::vector<int64_t> rt, ot;
  count_tiles(rows, p_.rows, p_.parallel(), rows_in_tile_, &groups_in_tile_, rt);
  count_tiles(outs, outs_per_array_, 1, outs_in_tile_, nullptr, ot);
  const double rep = double(repeat);
  const double adc_ns = p_.adc_bits * f_.adc_ns_per_bit;
  for (int64_t r : rt) {
    const double active_rows = double(rows_in_tile_[size_t(r)]);
    const double steps = double(groups_in_tile_[size_t(r)]) * input_bits_;
    c_.buffer_bits += rep * active_rows * input_bits_;  // the input slice, read once per row tile
    for (int64_t c : ot) {
      const size_t a = size_t(r * col_tiles_ + c);
      if (!allocated_[a]) throw Error(ExitCode::runtime, "internal: an input vector uses a sub-array that holds nothing");
      const double needed = double(outs_in_tile_[size_t(c)]);
      const double cols = needed * cells_per_weight_;
      c_.array_activations += repeat;
      c_.row_activations += rep * active_rows * input_bits_;
      c_.cell_reads += rep * active_rows * input_bits_ * double(stored_outs_[size_t(c)] * cells_per_weight_);
      c_.adc_conversions += rep * steps * cols;
      c_.shift_adds += rep * steps * cols;
      c_.macs += rep * active_rows * needed;
      c_.interconnect_bits += rep * (active_rows * input_bits_ + needed * psum_bits_);
      busy_read_ns_[a] += rep * steps * f_.read_ns;
      busy_adc_ns_[a] += rep * steps * double(ceil_div(int64_t(cols), adcs_per_array_)) * adc_ns;
    }
  }
  for (int64_t c : ot) {
    const double needed = double(outs_in_tile_[size_t(c)]);
    c_.partial_sum_adds += rep * needed * double(rt.size() - 1);
    c_.buffer_bits += rep * needed * psum_bits_;  // the finished outputs, written once
  }
  for (int64_t r : rt) rows_in_tile_[size_t(r)] = groups_in_tile_[size_t(r)] = 0;
  for (int64_t c : ot) outs_in_tile_[size_t(c)] = 0;
}

ImcCounts CrossbarMapping::counts() const {
  ImcCounts c = c_;
  c.arrays_allocated = std::count(allocated_.begin(), allocated_.end(), uint8_t(1));
  double worst = -1;
  for (size_t a = 0; a < busy_read_ns_.size(); ++a)
    if (busy_read_ns_[a] + busy_adc_ns_[a] > worst) {
      worst = busy_read_ns_[a] + busy_adc_ns_[a];
      c.critical_read_ns = busy_read_ns_[a];
      c.critical_adc_ns = busy_adc_ns_[a];
    }
  c.critical_write_rows = written_rows_.empty() ? 0 : *std::max_element(written_rows_.begin(), written_rows_.end());
  return c;
}

namespace {

// The keys query row i may use, as sorted disjoint ranges (causal and bounds applied).
void allowed_ranges(const Layout& l, const HeadLayout& hl, int64_t i, std::vector<IndexRange>& out) {
  out.clear();
  auto push = [&](int64_t lo, int64_t hi) {
    if (hi <= lo) return;
    if (!out.empty() && out.back().hi == lo)
      out.back().hi = hi;
    else
      out.push_back({lo, hi});
  };
  const int64_t end = l.causal ? std::min(l.cols, i + l.causal_offset + 1) : l.cols;
  if (!l.block) {
    for (int64_t t = hl.ptr[size_t(i)]; t < hl.ptr[size_t(i) + 1]; ++t) {
      const int64_t j = hl.idx[size_t(t)];
      if (j >= 0 && j < end) push(j, j + 1);
    }
    return;
  }
  const int64_t br = i / l.block_size;
  for (int64_t t = hl.ptr[size_t(br)]; t < hl.ptr[size_t(br) + 1]; ++t) {
    const int64_t j0 = int64_t(hl.idx[size_t(t)]) * l.block_size;
    push(std::max<int64_t>(j0, 0), std::min(j0 + l.block_size, end));
  }
}

// One (batch, kv head): K for Q·Kᵀ, V for P·V; each query row applied once per query head.
// The scheme's peripheral work of one (batch, kv head) (ImcScheme): per query row (once per
// query head of the group) and per stored K row; table bits are 32 per scale and per mean value.
void scheme_work(const Layout& l, const HeadLayout& hl, const ImcScheme& z, int64_t d, int64_t group,
                 CrossbarMapping& k_map, ImcCounts& work) {
  std::vector<IndexRange> keys, block_keys;
  std::vector<uint8_t> in_block(size_t(l.cols), 0);
  // The mean vectors' products are overhead, not the op's MACs (ops and TOPS count the op's).
  const double macs_before = k_map.counts().macs;
  const double log2d = std::log2(double(std::max<int64_t>(d, 1)));
  for (int64_t i = 0; i < l.rows; ++i) {
    allowed_ranges(l, hl, i, keys);
    double n = 0;
    for (const IndexRange& r : keys) n += double(r.hi - r.lo);
    const double g = double(group);
    if (n > 0) {
      work.scale_multiplies += g * (n * ((z.k_scales ? 1 : 0) + (z.p_round ? 1 : 0)) + (z.q_scales ? 1 : 0) +
                                    (z.v_channel ? double(d) : 0));
      if (z.mean_block > 0) work.scale_adds += g * n;  // the block's mean-Q . K bias, per score
    }
    if (z.mean_block > 0) work.scale_adds += g * double(d);              // Q minus its block mean
    if (z.rotate) work.scale_adds += g * double(d) * log2d;              // Hadamard butterflies on Q
    if (z.q_scales) work.scale_bits += g * 32;                          // the row's scale
    if (z.mean_block > 0 && (i + 1) % z.mean_block != 0 && i + 1 != l.rows) {
      for (const IndexRange& r : keys) std::fill(in_block.begin() + r.lo, in_block.begin() + r.hi, uint8_t(1));
      continue;
    }
    if (z.mean_block > 0) {  // the end of a query block: its mean vector on the union of its keys
      for (const IndexRange& r : keys) std::fill(in_block.begin() + r.lo, in_block.begin() + r.hi, uint8_t(1));
      block_keys.clear();
      for (int64_t j = 0; j < l.cols; ++j)
        if (in_block[size_t(j)]) {
          if (!block_keys.empty() && block_keys.back().hi == j) block_keys.back().hi = j + 1;
          else block_keys.push_back({j, j + 1});
          in_block[size_t(j)] = 0;
        }
      if (!block_keys.empty()) {
        k_map.apply({{0, d}}, block_keys, group);
        work.mean_vectors += g;
      }
      work.scale_bits += g * double(d) * 32;  // the block's mean vector
    }
  }
  // Per stored K: its scales and the V channel scales into the periphery; K smoothing (minus
  // the channel mean, whose d values are loaded) and rotation before the cells are written.
  work.scale_bits += double(z.k_groups) * 32 + (z.v_channel ? double(d) * 32 : 0);
  if (z.smooth_k) {
    work.scale_adds += double(l.cols) * double(d);
    work.scale_bits += double(d) * 32;
  }
  if (z.rotate) work.scale_adds += double(l.cols) * double(d) * log2d;
  work.macs = k_map.counts().macs - macs_before;
}

void map_head(const Layout& l, const HeadLayout& hl, const ImcParams& p, const ImcFigures& f, int64_t head_dim,
              int64_t group, int input_bits, int weight_bits, const ImcScheme* scheme, ImcCounts& qk, ImcCounts& pv) {
  CrossbarMapping k_map(p, f, head_dim, l.cols, input_bits, weight_bits);
  CrossbarMapping v_map(p, f, l.cols, head_dim, scheme ? scheme->pv_input_bits : input_bits,
                        scheme ? scheme->pv_weight_bits : weight_bits);
  std::vector<uint8_t> used(size_t(l.cols), 0);
  std::vector<IndexRange> keys;
  for (int64_t i = 0; i < l.rows; ++i) {
    poll_interrupt(i);  // Ctrl-C stops a large mapping within a fraction of a second
    allowed_ranges(l, hl, i, keys);
    for (const IndexRange& r : keys) std::fill(used.begin() + r.lo, used.begin() + r.hi, uint8_t(1));
  }
  std::vector<IndexRange> used_keys;
  for (int64_t j = 0; j < l.cols; ++j)
    if (used[size_t(j)]) {
      if (!used_keys.empty() && used_keys.back().hi == j)
        used_keys.back().hi = j + 1;
      else
        used_keys.push_back({j, j + 1});
    }
  const std::vector<IndexRange> all_dims{{0, head_dim}};
  k_map.store(all_dims, used_keys, true);
  v_map.store(used_keys, all_dims, true);
  for (int64_t i = 0; i < l.rows; ++i) {
    poll_interrupt(i);
    allowed_ranges(l, hl, i, keys);
    if (keys.empty()) continue;  // an empty row outputs 0 without touching the arrays
    k_map.apply(all_dims, keys, group);
    v_map.apply(keys, all_dims, group);
  }
  ImcCounts work;
  if (scheme) scheme_work(l, hl, *scheme, head_dim, group, k_map, work);
  qk = k_map.counts();
  pv = v_map.counts();
  qk.scale_multiplies = work.scale_multiplies;
  qk.scale_adds = work.scale_adds;
  qk.scale_bits = work.scale_bits;
  qk.mean_vectors = work.mean_vectors;
  qk.macs -= work.macs;
}

ImcCounts scaled(ImcCounts c, double n) {
  c.arrays_allocated = int64_t(double(c.arrays_allocated) * n);
  c.array_activations = int64_t(double(c.array_activations) * n);
  for (double* v : {&c.row_activations, &c.cell_reads, &c.adc_conversions, &c.shift_adds, &c.partial_sum_adds,
                    &c.buffer_bits, &c.interconnect_bits, &c.cells_written, &c.macs, &c.scale_multiplies,
                    &c.scale_adds, &c.scale_bits, &c.mean_vectors})
    *v *= n;
  return c;  // the copies run side by side: the critical path is unchanged
}

}  // namespace

AttentionCounts map_attention(const Op& op, const Layout& l, const ImcParams& p, int input_bits, int weight_bits,
                              const ImcScheme* scheme) {
  AttentionCounts out;
  const ImcFigures f = p.figures();
  const int64_t group = op.shape.group_size();
  const int64_t copies = l.batch * l.kv_heads;
  if (l.shared) {
    map_head(l, l.heads[0], p, f, op.shape.head_dim, group, input_bits, weight_bits, scheme, out.qk, out.pv);
    out.qk = scaled(out.qk, double(copies));
    out.pv = scaled(out.pv, double(copies));
  } else {
    for (int64_t b = 0; b < l.batch; ++b)
      for (int64_t h = 0; h < l.kv_heads; ++h) {
        ImcCounts qk, pv;
        map_head(l, l.head(b, h), p, f, op.shape.head_dim, group, input_bits, weight_bits, scheme, qk, pv);
        merge_parallel(out.qk, qk);
        merge_parallel(out.pv, pv);
      }
  }
  out.total = out.qk;
  out.total.add(out.pv);
  out.sram_for_kv = p.cell == ImcCell::sram;
  return out;
}

ImcCounts map_gemm(int64_t m, int64_t k, int64_t n, const ImcParams& p, int input_bits, int weight_bits) {
  CrossbarMapping x(p, p.figures(), k, n, input_bits, weight_bits);
  const std::vector<IndexRange> rows{{0, k}}, outs{{0, n}};
  x.store(rows, outs, /*charge_writes=*/false);  // weights are programmed once, before inference
  x.apply(rows, outs, m);
  return x.counts();
}

}  // namespace sattn

// The compute core: scratchpads (written by the DMA), accumulators, and the RUN and STORE
// engines, which never run at the same time (the dispatcher serializes them). RUN walks each
// query row: row start (mask = layout & causal & bounds), QK (LANES int8 MACs per cycle into an
// int32 score), one max/exp step, an optional rescale, and P*V (LANES p*v MACs per cycle into
// int40 accumulators). STORE normalizes each row with a reciprocal and streams int16 beats out.
// The arithmetic is hw/README.md "Arithmetic", literally. Limits and the exp2 table come from
// the generated package sattn_isa_pkg (hw/isa).
module sattn_core
  import sattn_isa_pkg::*;
#(
    parameter int LANES = 16
) (
    input logic clk,
    input logic rst,
    // Configuration (CONFIG registers).
    input logic [$clog2(DMAX):0] cfg_d,  // head_dim <= DMAX
    input logic [5:0] cfg_chunks,  // ceil(D / LANES)
    input logic cfg_causal,
    input logic signed [31:0] cfg_causal_offset,
    input logic [30:0] cfg_mult,
    input logic [5:0] cfg_shift,
    // CONFIG QUANT (hw/README.md "Quantization schemes").
    input logic cfg_scaled,  // scores scaled by the Q/K scale words, not cfg_mult/cfg_shift
    input logic cfg_bias,    // add the bias RAM to the scores
    input logic cfg_v16,     // V is int16 (vhmem:vmem); Q15.0 output
    input logic [2:0] cfg_bias_shift,
    // RUN / STORE issue (one-cycle pulses from the dispatcher).
    input logic run_start,
    input logic store_start,
    input logic [15:0] issue_nq,
    input logic [15:0] issue_nk,
    input logic issue_kvb,
    input logic issue_qb,
    input logic issue_use_mask,
    input logic issue_use_idx,
    input logic signed [31:0] issue_qpos0,
    input logic signed [31:0] issue_kpos0,
    input logic [63:0] issue_addr,
    // Scratchpad writes from the DMA.
    input logic sp_we,
    input logic [2:0] sp_kind,  // 0 index entries, 1 Q, 2 K, 3 V, 4 masks
    input logic sp_buf,
    input logic [5:0] sp_row,
    input logic [7:0] sp_col,
    input logic [5:0] sp_n,  // elements in sp_data (16 or 32)
    input logic [255:0] sp_data,
    // Index RAM read port for the DMA's gather.
    input logic idx_rd_buf,
    input logic [5:0] idx_rd_slot,
    output logic [31:0] idx_rd_value,
    output logic [31:0] idx_rd_run,
    // Output write port (DRAM model).
    output logic wr_valid,
    output logic [63:0] wr_addr,
    output logic [127:0] wr_data,
    input logic wr_ready,
    // Status for the dispatcher and the counters.
    output logic busy,
    output logic in_run,
    output logic run_kvb,
    output logic run_qb,
    output logic mac_cycle,
    output logic softmax_cycle,
    output logic write_cycle,
    output logic [6:0] lanes_active,
    output logic [31:0] skipped_inc,
    output logic [3:0] state_code
);
  typedef enum logic [3:0] {
    S_IDLE = 4'd0,
    S_ROW = 4'd1,
    S_QK = 4'd2,
    S_SOFTMAX = 4'd3,
    S_RESCALE = 4'd4,
    S_PV = 4'd5,
    S_ST_SETUP = 4'd6,
    S_ST_DIV = 4'd7,
    S_ST_NORM = 4'd8,
    S_ST_WRITE = 4'd9
  } state_t;
  state_t state;
  // Bits of a column index (DMAX is a power of 2).
  localparam int DW = $clog2(DMAX);

  // Scratchpads: [buffer][row][16-byte word], int8 after unpacking, column x in byte x % 16 of
  // word x / 16. A beat writes whole words (16 int8 values, or an i4 beat's 32 in two; v16: half a
  // word of vmem and of vhmem), so a write is one port per memory, not one per byte (a Verilator
  // simulation commits each written element separately: hw/README.md "Verilator speed").
  localparam int NW = DMAX / 16;
  logic [127:0] qmem[BUFFERS][QROWS][NW];
  logic [127:0] kmem[BUFFERS][KSLOTS][NW];
  logic [127:0] vmem[BUFFERS][KSLOTS][NW];
  // Quantization schemes: V's high bytes (v16), Q scale words per row, K scale words per slot,
  // the bias RAM [bias row][slot].
  logic [127:0] vhmem[BUFFERS][KSLOTS][NW];
  logic [31:0] qsmem[BUFFERS][QROWS];
  logic [31:0] ksmem[BUFFERS][KSLOTS];
  logic signed [31:0] biasmem[BUFFERS][QROWS][KSLOTS];
  logic [31:0] idxmem[BUFFERS][KSLOTS];
  logic [31:0] runmem[BUFFERS][KSLOTS];
  logic [63:0] maskmem[BUFFERS][QROWS];
  // Row state.
  logic signed [47:0] acc[QROWS][DMAX];
  logic signed [31:0] mrow[QROWS];
  logic mvalid[QROWS];
  logic [39:0] lrow[QROWS];
  logic signed [31:0] tbuf[KSLOTS];
  logic signed [15:0] obuf[DMAX];

  // Command registers.
  logic [6:0] nq, nk, r;
  logic kvb, qb, use_mask, use_idx;
  logic signed [31:0] qpos0, kpos0;
  logic [63:0] row_addr;
  // Walk registers.
  logic [5:0] c;
  logic [5:0] s;
  logic [63:0] rem;      // slots still to visit in this phase
  logic [63:0] rowmask;  // the row's allowed slots
  logic signed [31:0] sacc;
  logic signed [31:0] bm;
  logic [15:0] p;
  logic [15:0] alpha;
  // STORE registers.
  logic [5:0] e;
  logic [15:0] lm;
  logic [16:0] recip;
  logic [16:0] drem;
  logic [4:0] dbit;
  logic [5:0] beat;  // D/8 <= 32 beats a row

  assign idx_rd_value = idxmem[idx_rd_buf][idx_rd_slot];
  assign idx_rd_run = runmem[idx_rd_buf][idx_rd_slot];

  assign busy = state != S_IDLE;
  assign in_run = state == S_ROW || state == S_QK || state == S_SOFTMAX || state == S_RESCALE || state == S_PV;
  assign run_kvb = kvb;
  assign run_qb = qb;
  assign mac_cycle = state == S_QK || state == S_PV;
  assign softmax_cycle = state == S_ROW || state == S_SOFTMAX || state == S_RESCALE || state == S_ST_SETUP ||
                         state == S_ST_DIV || state == S_ST_NORM;
  assign write_cycle = state == S_ST_WRITE;
  assign state_code = state;

  // Lanes carrying a valid dimension in chunk c.
  logic [DW+1:0] dim_left;
  assign dim_left = {1'b0, cfg_d} - (DW + 2)'({c, 3'b000} * (DW + 2)'(LANES / 8));
  assign lanes_active = dim_left >= 9'(LANES) ? 7'(LANES) : dim_left[6:0];

  assign wr_valid = state == S_ST_WRITE;
  assign wr_addr = row_addr + {54'd0, beat, 4'd0};
  always_comb begin
    for (int i = 0; i < 8; i++) wr_data[16*i+:16] = obuf[DW'({beat, 3'(i)})];
  end

  // E(u) (hw/README.md "exp2"): the table entry of u's fraction shifted by its integer part.
  function automatic logic [15:0] exp2_fixed(input longint u);
    if ($unsigned(u) >= (64'(EXP2_ZERO_SHIFT) << EXP2_FRAC_BITS)) return 16'd0;
    return exp2_table(u[EXP2_FRAC_BITS-1:0]) >> u[EXP2_FRAC_BITS+:$clog2(EXP2_ZERO_SHIFT)];
  endfunction

  function automatic logic [5:0] lowest(input logic [63:0] m);
    logic [5:0] i;
    i = 6'd0;
    for (int b = 63; b >= 0; b--) if (m[b]) i = 6'(b);
    return i;
  endfunction

  function automatic logic signed [31:0] scale_score(input logic signed [31:0] sc, input logic [30:0] mult,
                                                     input logic [5:0] sh);
    longint prod;
    prod = longint'(sc) * longint'({33'd0, mult});
    prod = prod >>> sh;
    if (prod > 64'sd2147483647) return 32'h7fffffff;
    if (prod < -64'sd2147483648) return 32'h80000000;
    return prod[31:0];
  endfunction

  // Scheme scores: t0 = (sc * mq * mk) >>> min(sq + sk, 63) with the words {sq, mq} and {sk, mk}
  // (mantissa [15:0], shift [21:16]), or the per-tensor (sc * mult) >>> sh; t = sat32(t0 + bias).
  /* verilator lint_off UNUSEDSIGNAL */  // word bits [31:22] are reserved (0)
  function automatic logic signed [31:0] scheme_score(input logic signed [31:0] sc, input logic [31:0] wq,
                                                      input logic [31:0] wk, input logic signed [31:0] bias);
    longint prod;
    logic [6:0] sh;
    if (cfg_scaled) begin
      prod = longint'(sc) * longint'({48'd0, wq[15:0]}) * longint'({48'd0, wk[15:0]});
      sh = 7'(wq[21:16]) + 7'(wk[21:16]);
      prod = prod >>> (sh > 7'd63 ? 7'd63 : sh);
    end else begin
      prod = (longint'(sc) * longint'({33'd0, cfg_mult})) >>> cfg_shift;
    end
    prod = prod + longint'(bias);
    if (prod > 64'sd2147483647) return 32'h7fffffff;
    if (prod < -64'sd2147483648) return 32'h80000000;
    return prod[31:0];
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */

  // Scratchpad column c * LANES + l of chunk c, lane l: its word and its byte in the word.
  function automatic logic [DW-5:0] col_word(input logic [5:0] ch, input int ln);
    return (DW - 4)'((32'(ch) * LANES + ln) >> 4);
  endfunction
  function automatic logic [3:0] col_byte(input logic [5:0] ch, input int ln);
    return 4'(32'(ch) * LANES + ln);
  endfunction
  function automatic logic signed [7:0] sp_byte(input logic [127:0] w, input logic [3:0] i);
    return w[{i, 3'b000}+:8];
  endfunction

  // The key position of slot `sl` for the causal rule.
  function automatic logic signed [31:0] kpos(input logic [5:0] sl);
    return use_idx ? idxmem[kvb][sl] : kpos0 + 32'(sl);
  endfunction

  always_ff @(posedge clk) begin
    skipped_inc <= 32'd0;
    // acc needs no reset sweep: it powers up zero (--x-initial 0 in simulation, a cleared SRAM
    // in silicon) and STORE zeroes every row it reads.
    if (rst) begin
      state <= S_IDLE;
      for (int i = 0; i < QROWS; i++) begin
        mvalid[i] <= 1'b0;
        lrow[i] <= 40'd0;
        mrow[i] <= 32'sd0;
      end
    end else begin
      // DMA writes (always into a buffer the core is not reading: the dispatcher ensures it).
      if (sp_we) begin
        case (sp_kind)
          3'd0: begin
            idxmem[sp_buf][sp_row] <= sp_data[31:0];
            runmem[sp_buf][sp_row] <= sp_data[63:32];
            idxmem[sp_buf][sp_row+6'd1] <= sp_data[95:64];
            runmem[sp_buf][sp_row+6'd1] <= sp_data[127:96];
          end
          3'd4: begin
            maskmem[sp_buf][sp_row] <= sp_data[63:0];
            maskmem[sp_buf][sp_row+6'd1] <= sp_data[127:64];
          end
          3'd5: for (int j = 0; j < 4; j++) qsmem[sp_buf][6'(sp_col+8'(j))] <= sp_data[32*j+:32];
          3'd6: for (int j = 0; j < 4; j++) ksmem[sp_buf][6'(sp_col+8'(j))] <= sp_data[32*j+:32];
          3'd7: for (int j = 0; j < 4; j++) biasmem[sp_buf][sp_row][6'(sp_col+8'(j))] <= sp_data[32*j+:32];
          default: begin
            // Columns sp_col .. sp_col + sp_n - 1; sp_col is a multiple of sp_n (sattn_dma.sv).
            logic [DW-5:0] wi;
            wi = sp_col[DW-1:4];
            if (sp_kind == 3'd3 && sp_n == 6'd8) begin
              // v16: eight int16 V values, low bytes into vmem, high bytes into vhmem (half a word).
              logic [127:0] wl, wh;
              logic [63:0] lo, hi;
              for (int j = 0; j < 8; j++) begin
                lo[8*j+:8] = sp_data[16*j+:8];
                hi[8*j+:8] = sp_data[16*j+8+:8];
              end
              wl = vmem[sp_buf][sp_row][wi];
              wh = vhmem[sp_buf][sp_row][wi];
              if (sp_col[3]) begin
                wl[127:64] = lo;
                wh[127:64] = hi;
              end else begin
                wl[63:0] = lo;
                wh[63:0] = hi;
              end
              vmem[sp_buf][sp_row][wi] <= wl;
              vhmem[sp_buf][sp_row][wi] <= wh;
            end else begin
              // 16 values (one word), or 32 (an i4 beat: two words).
              if (sp_kind == 3'd1) qmem[sp_buf][sp_row][wi] <= sp_data[127:0];
              else if (sp_kind == 3'd2) kmem[sp_buf][sp_row][wi] <= sp_data[127:0];
              else vmem[sp_buf][sp_row][wi] <= sp_data[127:0];
              if (sp_n == 6'd32) begin
                if (sp_kind == 3'd1) qmem[sp_buf][sp_row][wi+1'b1] <= sp_data[255:128];
                else if (sp_kind == 3'd2) kmem[sp_buf][sp_row][wi+1'b1] <= sp_data[255:128];
                else vmem[sp_buf][sp_row][wi+1'b1] <= sp_data[255:128];
              end
            end
          end
        endcase
      end

      case (state)
        S_IDLE: begin
          if (run_start) begin
            nq <= issue_nq[6:0];
            nk <= issue_nk[6:0];
            kvb <= issue_kvb;
            qb <= issue_qb;
            use_mask <= issue_use_mask;
            use_idx <= issue_use_idx;
            qpos0 <= issue_qpos0;
            kpos0 <= issue_kpos0;
            r <= 7'd0;
            if (issue_nq != 16'd0 && issue_nk != 16'd0) state <= S_ROW;
          end else if (store_start) begin
            nq <= issue_nq[6:0];
            r <= 7'd0;
            row_addr <= issue_addr;
            if (issue_nq != 16'd0) state <= S_ST_SETUP;
          end
        end

        S_ROW: begin
          logic [63:0] m;
          logic signed [31:0] limit;
          limit = qpos0 + 32'(r) + cfg_causal_offset;
          for (int sl = 0; sl < KSLOTS; sl++) begin
            m[sl] = (7'(sl) < nk) && (!use_mask || maskmem[kvb][r[5:0]][sl]) &&
                    (!cfg_causal || kpos(6'(sl)) <= limit);
          end
          skipped_inc <= (32'(nk) - 32'($countones(m))) * 32'({cfg_d, 1'b0});
          rowmask <= m;
          if (m == 64'd0) begin
            if (r + 7'd1 == nq) state <= S_IDLE;
            r <= r + 7'd1;
          end else begin
            s <= lowest(m);
            rem <= m & ~(64'd1 << lowest(m));
            c <= 6'd0;
            sacc <= 32'sd0;
            state <= S_QK;
          end
        end

        S_QK: begin
          logic signed [31:0] sum;
          logic signed [31:0] t;
          sum = sacc;
          for (int l = 0; l < LANES; l++) begin
            if (32'(c) * LANES + l < 32'(cfg_d))
              sum = sum + 32'(sp_byte(qmem[qb][r[5:0]][col_word(c, l)], col_byte(c, l))) *
                          32'(sp_byte(kmem[kvb][s][col_word(c, l)], col_byte(c, l)));
          end
          if (c + 6'd1 == cfg_chunks) begin
            if (cfg_scaled || cfg_bias)
              t = scheme_score(sum, qsmem[qb][r[5:0]], ksmem[kvb][s],
                               cfg_bias ? biasmem[kvb][6'(r[5:0] >> cfg_bias_shift)][s] : 32'sd0);
            else t = scale_score(sum, cfg_mult, cfg_shift);
            tbuf[s] <= t;
            // First key of the row: rowmask's lowest bit is the current slot.
            if (s == lowest(rowmask) || t > bm) bm <= t;
            if (rem == 64'd0) begin
              state <= S_SOFTMAX;
            end else begin
              s <= lowest(rem);
              rem <= rem & ~(64'd1 << lowest(rem));
              c <= 6'd0;
              sacc <= 32'sd0;
            end
          end else begin
            sacc <= sum;
            c <= c + 6'd1;
          end
        end

        S_SOFTMAX: begin
          logic signed [31:0] mnew;
          logic [15:0] p0;
          logic [39:0] lnew;
          logic [5:0] s0;
          mnew = (mvalid[r[5:0]] && mrow[r[5:0]] > bm) ? mrow[r[5:0]] : bm;
          s0 = lowest(rowmask);
          p0 = exp2_fixed(longint'(mnew) - longint'(tbuf[s0]));
          lnew = lrow[r[5:0]];
          if (mvalid[r[5:0]] && mnew != mrow[r[5:0]]) begin
            logic [15:0] a;
            /* verilator lint_off UNUSEDSIGNAL */
            logic [55:0] lprod;  // bits [14:0] drop in the >> 15; [55] is 0 (l < 2^40, a <= 2^15)
            /* verilator lint_on UNUSEDSIGNAL */
            a = exp2_fixed(longint'(mnew) - longint'(mrow[r[5:0]]));
            alpha <= a;
            lprod = 56'(lnew) * 56'(a);
            lnew = lprod[54:15];
            state <= S_RESCALE;
          end else begin
            state <= S_PV;
          end
          lrow[r[5:0]] <= lnew + 40'(p0);
          mrow[r[5:0]] <= mnew;
          mvalid[r[5:0]] <= 1'b1;
          p <= p0;
          s <= s0;
          rem <= rowmask & ~(64'd1 << s0);
          c <= 6'd0;
        end

        S_RESCALE: begin
          for (int l = 0; l < LANES; l++) begin
            if (32'(c) * LANES + l < 32'(cfg_d)) begin
              longint a;
              a = longint'(acc[r[5:0]][DW'(32'(c) * LANES + l)]) * longint'({48'd0, alpha});
              acc[r[5:0]][DW'(32'(c) * LANES + l)] <= 48'(a >>> 15);
            end
          end
          if (c + 6'd1 == cfg_chunks) begin
            c <= 6'd0;
            state <= S_PV;
          end else begin
            c <= c + 6'd1;
          end
        end

        S_PV: begin
          for (int l = 0; l < LANES; l++) begin
            if (32'(c) * LANES + l < 32'(cfg_d)) begin
              logic signed [47:0] pv;
              logic signed [15:0] v;
              v = cfg_v16 ? {sp_byte(vhmem[kvb][s][col_word(c, l)], col_byte(c, l)),
                             sp_byte(vmem[kvb][s][col_word(c, l)], col_byte(c, l))}
                          : 16'(sp_byte(vmem[kvb][s][col_word(c, l)], col_byte(c, l)));
              pv = 48'(signed'({1'b0, p})) * 48'(v);
              acc[r[5:0]][DW'(32'(c) * LANES + l)] <= acc[r[5:0]][DW'(32'(c) * LANES + l)] + pv;
            end
          end
          if (c + 6'd1 == cfg_chunks) begin
            c <= 6'd0;
            if (rem == 64'd0) begin
              if (r + 7'd1 == nq) state <= S_IDLE;
              else state <= S_ROW;
              r <= r + 7'd1;
            end else begin
              logic [5:0] sn;
              logic [15:0] pn;
              sn = lowest(rem);
              pn = exp2_fixed(longint'(mrow[r[5:0]]) - longint'(tbuf[sn]));
              s <= sn;
              rem <= rem & ~(64'd1 << sn);
              p <= pn;
              lrow[r[5:0]] <= lrow[r[5:0]] + 40'(pn);
            end
          end else begin
            c <= c + 6'd1;
          end
        end

        S_ST_SETUP: begin
          logic [39:0] l;
          logic [5:0] n;
          l = lrow[r[5:0]];
          n = 6'd0;
          for (int b = 0; b < 40; b++) if (l[b]) n = 6'(b + 1);
          e <= n > 6'd16 ? n - 6'd16 : 6'd0;
          lm <= 16'(l >> (n > 6'd16 ? n - 6'd16 : 6'd0));
          recip <= 17'd0;
          drem <= 17'd16384;  // 2^31's quotient bits 31..17 are 0 (lm >= 2^15); remainder 2^14
          dbit <= 5'd16;
          state <= S_ST_DIV;
        end

        S_ST_DIV: begin
          // One restoring-division step per cycle: recip = floor(2^31 / lm), bits 16..0.
          logic [17:0] r2;
          r2 = {drem, 1'b0};
          if (r2 >= {2'd0, lm}) begin
            drem <= 17'(r2 - {2'd0, lm});
            recip[dbit] <= 1'b1;
          end else begin
            drem <= r2[16:0];
          end
          if (dbit == 5'd0) begin
            c <= 6'd0;
            state <= S_ST_NORM;
          end
          dbit <= dbit - 5'd1;
        end

        S_ST_NORM: begin
          for (int l = 0; l < LANES; l++) begin
            if (32'(c) * LANES + l < 32'(cfg_d)) begin
              // 66-bit products (int48 x 17 bits); Q8.8, or Q15.0 with int16 V (8 more bits).
              logic signed [79:0] o;
              logic [6:0] sh;
              sh = 7'd23 + 7'(e) + (cfg_v16 ? 7'd8 : 7'd0);
              o = 80'(acc[r[5:0]][DW'(32'(c) * LANES + l)]) * 80'(signed'({1'b0, recip}));
              o = (o + (80'sd1 <<< (sh - 7'd1))) >>> sh;
              if (lrow[r[5:0]] == 40'd0) o = 80'sd0;
              if (o > 80'sd32767) o = 80'sd32767;
              if (o < -80'sd32768) o = -80'sd32768;
              obuf[DW'(32'(c) * LANES + l)] <= o[15:0];
              acc[r[5:0]][DW'(32'(c) * LANES + l)] <= 48'sd0;
            end
          end
          if (c + 6'd1 == cfg_chunks) begin
            mvalid[r[5:0]] <= 1'b0;
            lrow[r[5:0]] <= 40'd0;
            beat <= 6'd0;
            state <= S_ST_WRITE;
          end else begin
            c <= c + 6'd1;
          end
        end

        S_ST_WRITE: begin
          if (wr_ready) begin
            // 2*D bytes per row = D/8 beats.
            if (beat + 6'd1 == 6'(cfg_d >> 3)) begin
              row_addr <= row_addr + 64'({cfg_d, 1'b0});
              if (r + 7'd1 == nq) state <= S_IDLE;
              else state <= S_ST_SETUP;
              r <= r + 7'd1;
            end
            beat <= beat + 6'd1;
          end
        end

        default: state <= S_IDLE;
      endcase
    end
  end
endmodule

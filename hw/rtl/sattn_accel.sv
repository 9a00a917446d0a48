// Top of the RoCC sparse-attention accelerator (hw/README.md): command FIFO, in-order
// dispatcher with buffer hazards, CONFIG registers, event counters with snapshot/reset, PROBE.
// Command codes, fields and limits come from the generated package sattn_isa_pkg (hw/isa).
module sattn_accel
  import sattn_isa_pkg::*;
#(
    parameter int LANES = 16
) (
    input logic clk,
    input logic rst,
    // RoCC command and response.
    input logic cmd_valid,
    output logic cmd_ready,
    input logic [6:0] cmd_funct,
    input logic [63:0] cmd_rs1,
    input logic [63:0] cmd_rs2,
    output logic resp_valid,
    output logic [63:0] resp_data,
    output logic busy,
    // DRAM read port.
    output logic rd_req,
    output logic [63:0] rd_addr,
    output logic [31:0] rd_len,
    input logic rd_ready,
    input logic rd_beat_valid,
    input logic [127:0] rd_beat_data,
    // DRAM write port.
    output logic wr_valid,
    output logic [63:0] wr_addr,
    output logic [127:0] wr_data,
    input logic wr_ready,
    // Diagnostics for the harness.
    output logic illegal,
    output logic [31:0] illegal_index,
    output logic [31:0] dispatched,
    output logic [1:0] dbg_dma_state,
    output logic [3:0] dbg_core_state,
    output logic [4:0] dbg_fifo_count,
    output logic [3:0] dbg_head_funct,
    // Grid hooks (hw/rtl/sattn_grid.sv; a lone tile ties the inputs to 0): the multicast field of
    // each command (0 none, 1 the gang, 2 the heads of one query tile) travels with it through the
    // FIFO; the grid holds a multicast load's issue until every tile sharing it can issue it, and
    // reads the event counters directly.
    input logic [1:0] cmd_mc,
    output logic [1:0] head_mc,
    output logic head_ready,
    input logic issue_hold,
    output logic issue,
    input logic [3:0] ctr_sel,
    output logic [63:0] ctr_value
);
  localparam int DEPTH = FIFO_DEPTH;  // a power of 2
  localparam int AW = $clog2(DEPTH);
  localparam int NEV = EVENT_COUNT;

  // ---------------------------------------------------------------- command FIFO
  // funct7 is kept as 4 bits: codes above 15 (none is defined) become 15, an unknown command.
  logic [3:0] fifo_funct[DEPTH];
  logic [63:0] fifo_rs1[DEPTH];
  logic [63:0] fifo_rs2[DEPTH];
  logic [1:0] fifo_mc[DEPTH];
  logic [AW-1:0] head, tail;
  logic [AW:0] count;
  assign cmd_ready = count != (AW + 1)'(DEPTH);
  logic push, pop;
  assign push = cmd_valid && cmd_ready;

  logic [3:0] f;
  logic [63:0] a, b;
  assign f = fifo_funct[head];
  assign a = fifo_rs1[head];
  assign b = fifo_rs2[head];
  logic have;
  assign have = count != '0;

  // ---------------------------------------------------------------- configuration
  logic [$clog2(DMAX):0] cfg_d;  // head_dim <= DMAX
  logic cfg_i4, cfg_causal, cfg_dbuf;
  logic signed [31:0] cfg_off;
  logic [30:0] cfg_mult;
  logic [5:0] cfg_shift;
  logic [7:0] cfg_spec;
  logic cfg_format;
  logic [63:0] base[BASE_COUNT];
  logic [5:0] cfg_chunks;
  logic [15:0] cfg_rowbytes;
  // CONFIG QUANT (hw/README.md "Quantization schemes"): 0 at reset, the per-tensor datapath.
  logic cfg_scaled, cfg_bias, cfg_v16;
  logic [2:0] cfg_bias_shift;
  logic [15:0] cfg_vrowbytes;  // bytes of a V row: 2 x D with int16 V
  assign cfg_vrowbytes = cfg_v16 ? {7'd0, cfg_d, 1'b0} : cfg_rowbytes;
  assign cfg_chunks = 6'((32'(cfg_d) + LANES - 1) / LANES);
  assign cfg_rowbytes = cfg_i4 ? 16'(cfg_d >> 1) : 16'(cfg_d);

  // ---------------------------------------------------------------- units
  logic dma_start, run_start, store_start;
  logic dma_busy, dma_buf, dma_beat, dma_gather;
  logic [1:0] dma_kind, dma_state;
  logic core_busy, core_in_run, core_kvb, core_qb, core_mac, core_softmax, core_write;
  logic [6:0] core_lanes;
  logic [31:0] core_skipped;
  logic [3:0] core_state;

  logic idx_rd_buf;
  logic [5:0] idx_rd_slot;
  logic [31:0] idx_rd_value, idx_rd_run;
  logic sp_we, sp_buf;
  logic [2:0] sp_kind;
  logic [5:0] sp_row;
  logic [7:0] sp_col;
  logic [5:0] sp_n;
  logic [255:0] sp_data;

  // Buffer select: buffer 0 only in single-buffer mode.
  logic sel_buf, run_kvb, run_qb;
  assign sel_buf = cfg_dbuf & load_buffer(b);
  assign run_kvb = cfg_dbuf & run_kv_buffer(b);
  assign run_qb = cfg_dbuf & run_q_buffer(b);

  // ---------------------------------------------------------------- dispatcher
  logic can_issue, bad;
  always_comb begin
    can_issue = 1'b0;
    bad = 1'b0;
    if (have) begin
      case (f)
        FUNCT_CONFIG: can_issue = !dma_busy && !core_busy;
        FUNCT_LOAD_IDX, FUNCT_LOAD_K, FUNCT_LOAD_V: can_issue = !dma_busy && !(core_in_run && core_kvb == sel_buf);
        FUNCT_LOAD_Q: can_issue = !dma_busy && !(core_in_run && core_qb == sel_buf);
        FUNCT_RUN:
        can_issue = !core_busy && !(dma_busy && ((dma_kind == 2'd1 && dma_buf == run_qb) ||
                                                 (dma_kind != 2'd1 && dma_buf == run_kvb)));
        FUNCT_STORE: can_issue = !core_busy;
        // Q scale words (target 1) belong to the Q side, K scale words and bias rows to K/V.
        FUNCT_LOAD_SCALE:
        can_issue = !dma_busy && !(core_in_run && (load_scale_target(b) == 2'd1 ? core_qb : core_kvb) == sel_buf);
        FUNCT_COUNTER, FUNCT_PROBE: can_issue = 1'b1;
        default: can_issue = 1'b1;
      endcase
      // Commands the hardware cannot execute are dropped and flagged.
      case (f)
        // (the head_dim multiples are powers of 2)
        FUNCT_CONFIG:
        bad = config_subop(a) >= 4'(CONFIG_OP_COUNT) ||
              (config_subop(a) == CONFIG_SHAPE &&
               (shape_head_dim(b) == 16'd0 || shape_head_dim(b) > 16'(DMAX) ||
                (shape_head_dim(b) & 16'(HEAD_DIM_MULTIPLE - 1)) != 16'd0 ||
                (shape_i4(b) && (shape_head_dim(b) & 16'(HEAD_DIM_MULTIPLE_I4 - 1)) != 16'd0))) ||
              (config_subop(a) == CONFIG_ADDR && config_base(a) >= 4'(BASE_COUNT));
        FUNCT_LOAD_IDX: bad = load_count(b) > 16'(KSLOTS) || load_mask_rows(b) > 16'(QROWS);
        FUNCT_LOAD_Q: bad = load_count(b) > 16'(QROWS);
        FUNCT_LOAD_K, FUNCT_LOAD_V: bad = load_count(b) > 16'(KSLOTS);
        FUNCT_RUN: bad = run_nq(b) > 16'(QROWS) || run_nk(b) > 16'(KSLOTS);
        FUNCT_STORE: bad = store_rows(b) > 16'(QROWS);
        FUNCT_LOAD_SCALE:
        bad = load_scale_target(b) == 2'd0 || load_scale_count(b) > 16'(KSLOTS) || load_scale_rows(b) > 16'(QROWS) ||
              (load_scale_target(b) != 2'd3 && load_scale_rows(b) > 16'd1);
        FUNCT_COUNTER, FUNCT_PROBE: bad = 1'b0;
        default: bad = 1'b1;
      endcase
    end
  end
  assign pop = have && can_issue && !issue_hold;
  assign head_ready = have && can_issue;
  assign head_mc = have ? fifo_mc[head] : 2'd0;
  assign issue = pop;
  assign dma_start = pop && !bad && (f == FUNCT_LOAD_IDX || f == FUNCT_LOAD_Q || f == FUNCT_LOAD_K ||
                                     f == FUNCT_LOAD_V || f == FUNCT_LOAD_SCALE);
  // LOAD_SCALE: the DMA's kind is its side (1 Q scale words; 2 K scale words, 3 bias rows: K/V).
  logic start_aux;
  assign start_aux = f == FUNCT_LOAD_SCALE;
  assign run_start = pop && !bad && f == FUNCT_RUN;
  assign store_start = pop && !bad && f == FUNCT_STORE;

  // The DMA's load kinds: 0 IDX, 1 Q, 2 K, 3 V (sattn_dma.sv start_kind).
  logic [1:0] start_kind;
  assign start_kind = start_aux ? load_scale_target(b) :
                      f == FUNCT_LOAD_IDX ? 2'd0 : f == FUNCT_LOAD_Q ? 2'd1 : f == FUNCT_LOAD_K ? 2'd2 : 2'd3;
  logic [63:0] start_addr;
  assign start_addr = (start_aux ? base[BASE_QUANT] :
                       f == FUNCT_LOAD_IDX ? base[BASE_IDX] : f == FUNCT_LOAD_Q ? base[BASE_Q] :
                       f == FUNCT_LOAD_K ? base[BASE_K] : base[BASE_V]) + a;

  // ---------------------------------------------------------------- counters
  logic [63:0] cnt[NEV];
  logic [63:0] snap[NEV];
  logic active;
  assign active = dma_busy || core_busy || (have && f != FUNCT_COUNTER && f != FUNCT_PROBE);
  assign busy = dma_busy || core_busy || have;

  // PROBE word 0: the generated fixed fields with this build's LANES.
  logic [63:0] probe_word0;
  assign probe_word0 = PROBE_WORD0_FIXED | ({56'd0, 8'(LANES)} << PROBE_LANES_LSB);

  always_ff @(posedge clk) begin
    resp_valid <= 1'b0;
    if (rst) begin
      head <= '0;
      tail <= '0;
      count <= '0;
      illegal <= 1'b0;
      illegal_index <= 32'd0;
      dispatched <= 32'd0;
      cfg_d <= ($clog2(DMAX) + 1)'(64);
      cfg_i4 <= 1'b0;
      cfg_causal <= 1'b0;
      cfg_dbuf <= 1'b1;
      cfg_off <= 32'sd0;
      cfg_mult <= 31'd1;
      cfg_shift <= 6'd0;
      cfg_spec <= 8'd0;
      cfg_format <= 1'b0;
      cfg_scaled <= 1'b0;
      cfg_bias <= 1'b0;
      cfg_v16 <= 1'b0;
      cfg_bias_shift <= 3'd0;
      for (int i = 0; i < BASE_COUNT; i++) base[i] <= 64'd0;
      for (int i = 0; i < NEV; i++) begin
        cnt[i] <= 64'd0;
        snap[i] <= 64'd0;
      end
    end else begin
      if (push) begin
        fifo_funct[tail] <= cmd_funct > 7'd15 ? 4'd15 : cmd_funct[3:0];
        fifo_rs1[tail] <= cmd_rs1;
        fifo_rs2[tail] <= cmd_rs2;
        fifo_mc[tail] <= cmd_mc;
        tail <= tail + 1'b1;
      end
      if (pop) head <= head + 1'b1;
      count <= count + (AW + 1)'(push) - (AW + 1)'(pop);

      // Events of this cycle; exactly one of busy/stall_* per active cycle.
      if (active) begin
        cnt[EV_CYCLES] <= cnt[EV_CYCLES] + 64'd1;
        if (core_mac) cnt[EV_BUSY] <= cnt[EV_BUSY] + 64'd1;
        else if (core_softmax) cnt[EV_STALL_SOFTMAX] <= cnt[EV_STALL_SOFTMAX] + 64'd1;
        else if (core_write) cnt[EV_STALL_DMA] <= cnt[EV_STALL_DMA] + 64'd1;
        else if (dma_busy && dma_kind == 2'd0) cnt[EV_STALL_INDEX] <= cnt[EV_STALL_INDEX] + 64'd1;
        else if (dma_busy) cnt[EV_STALL_DMA] <= cnt[EV_STALL_DMA] + 64'd1;
        else cnt[EV_STALL_OTHER] <= cnt[EV_STALL_OTHER] + 64'd1;
      end
      if (core_mac) cnt[EV_MACS_ISSUED] <= cnt[EV_MACS_ISSUED] + 64'(core_lanes);
      cnt[EV_MACS_SKIPPED] <= cnt[EV_MACS_SKIPPED] + 64'(core_skipped);
      if (dma_beat) cnt[EV_DMA_BYTES_IN] <= cnt[EV_DMA_BYTES_IN] + 64'(BEAT_BYTES);
      if (wr_valid && wr_ready) cnt[EV_DMA_BYTES_OUT] <= cnt[EV_DMA_BYTES_OUT] + 64'(BEAT_BYTES);
      if (dma_gather) cnt[EV_GATHERS] <= cnt[EV_GATHERS] + 64'd1;

      if (pop) begin
        dispatched <= dispatched + 32'd1;
        cnt[EV_COMMANDS] <= cnt[EV_COMMANDS] + 64'd1;
        if (bad) begin
          if (!illegal) illegal_index <= dispatched;
          illegal <= 1'b1;
        end else begin
          case (f)
            FUNCT_CONFIG: begin
              case (config_subop(a))
                CONFIG_SHAPE: begin
                  cfg_d <= ($clog2(DMAX) + 1)'(shape_head_dim(b));  // <= DMAX
                  cfg_i4 <= shape_i4(b);
                  cfg_causal <= shape_causal(b);
                  cfg_dbuf <= shape_double_buffer(b);
                  cfg_off <= shape_causal_offset(b);
                end
                CONFIG_SPEC: begin
                  cfg_spec <= spec_code(b);
                  cfg_format <= spec_format(b);
                end
                CONFIG_SCALE: begin
                  cfg_mult <= scale_mult(b);
                  cfg_shift <= scale_shift(b);
                end
                CONFIG_QUANT: begin
                  cfg_scaled <= quant_scaled(b);
                  cfg_bias <= quant_bias(b);
                  cfg_v16 <= quant_v16(b);
                  cfg_bias_shift <= quant_bias_shift(b);
                end
                default: base[3'(config_base(a))] <= b;  // CONFIG_ADDR
              endcase
            end
            FUNCT_COUNTER: begin
              resp_valid <= 1'b1;
              resp_data <= counter_event(a) < 8'(NEV) ?
                  (counter_read_snapshot(a) ? snap[4'(counter_event(a))] : cnt[4'(counter_event(a))]) : 64'd0;
              if (counter_take_snapshot(a)) for (int i = 0; i < NEV; i++) snap[i] <= cnt[i];
              if (counter_reset(a)) for (int i = 0; i < NEV; i++) cnt[i] <= 64'd0;
            end
            FUNCT_PROBE: begin
              resp_valid <= 1'b1;
              resp_data <= probe_word(a) ? PROBE_WORD1 : probe_word0;
            end
            default: ;
          endcase
        end
      end
    end
  end

  // ---------------------------------------------------------------- units
  sattn_dma dma (
      .clk, .rst, .cfg_i4, .cfg_rowbytes, .cfg_v16, .cfg_vrowbytes,
      .start(dma_start), .start_kind, .start_buf(sel_buf), .start_aux,
      .start_gather(load_gather(b) && (f == FUNCT_LOAD_K || f == FUNCT_LOAD_V)),
      .start_n(load_count(b)),
      .start_mrows(f == FUNCT_LOAD_IDX ? load_mask_rows(b) : start_aux ? load_scale_rows(b) : 16'd0), .start_addr,
      .idx_rd_buf, .idx_rd_slot, .idx_rd_value, .idx_rd_run,
      .rd_req, .rd_addr, .rd_len, .rd_ready, .rd_beat_valid, .rd_beat_data,
      .sp_we, .sp_kind, .sp_buf, .sp_row, .sp_col, .sp_n, .sp_data,
      .busy(dma_busy), .cur_kind(dma_kind), .cur_buf(dma_buf), .beat_fire(dma_beat), .gather_fire(dma_gather),
      .state_code(dma_state));

  sattn_core #(.LANES(LANES)) core (
      .clk, .rst, .cfg_d, .cfg_chunks, .cfg_causal, .cfg_causal_offset(cfg_off), .cfg_mult, .cfg_shift,
      .cfg_scaled, .cfg_bias, .cfg_v16, .cfg_bias_shift,
      // RUN's nq and STORE's rows are the same bits.
      .run_start, .store_start, .issue_nq(run_nq(b)), .issue_nk(run_nk(b)), .issue_kvb(run_kvb), .issue_qb(run_qb),
      .issue_use_mask(run_use_mask(b)), .issue_use_idx(run_use_index(b)), .issue_qpos0(run_qpos0(a)),
      .issue_kpos0(run_kpos0(a)), .issue_addr(base[BASE_OUT] + a),
      .sp_we, .sp_kind, .sp_buf, .sp_row, .sp_col, .sp_n, .sp_data,
      .idx_rd_buf, .idx_rd_slot, .idx_rd_value, .idx_rd_run,
      .wr_valid, .wr_addr, .wr_data, .wr_ready,
      .busy(core_busy), .in_run(core_in_run), .run_kvb(core_kvb), .run_qb(core_qb), .mac_cycle(core_mac),
      .softmax_cycle(core_softmax), .write_cycle(core_write), .lanes_active(core_lanes),
      .skipped_inc(core_skipped), .state_code(core_state));

  assign dbg_dma_state = dma_state;
  assign dbg_core_state = core_state;
  assign dbg_fifo_count = 5'(count);
  assign dbg_head_funct = f;
  assign ctr_value = 32'(ctr_sel) < NEV ? cnt[ctr_sel] : 64'd0;

  // Unused fields of the CONFIG SPEC register are kept for software; reference them for lint.
  logic unused;
  assign unused = ^{cfg_spec, cfg_format};
endmodule

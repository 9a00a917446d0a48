// Top of the RoCC sparse-attention accelerator (hw/README.md): command FIFO, in-order
// dispatcher with buffer hazards, CONFIG registers, event counters with snapshot/reset, PROBE.
module sattn_accel #(
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
    output logic [3:0] dbg_head_funct
);
  localparam int DEPTH = 16;
  localparam int NEV = 13;

  // ---------------------------------------------------------------- command FIFO
  logic [3:0] fifo_funct[DEPTH];
  logic [63:0] fifo_rs1[DEPTH];
  logic [63:0] fifo_rs2[DEPTH];
  logic [3:0] head, tail;
  logic [4:0] count;
  assign cmd_ready = count != 5'(DEPTH);
  logic push, pop;
  assign push = cmd_valid && cmd_ready;

  logic [3:0] f;
  logic [63:0] a, b;
  assign f = fifo_funct[head];
  assign a = fifo_rs1[head];
  assign b = fifo_rs2[head];
  logic have;
  assign have = count != 5'd0;

  // ---------------------------------------------------------------- configuration
  logic [7:0] cfg_d;
  logic cfg_i4, cfg_causal, cfg_dbuf;
  logic signed [31:0] cfg_off;
  logic [30:0] cfg_mult;
  logic [5:0] cfg_shift;
  logic [7:0] cfg_spec;
  logic cfg_format;
  logic [63:0] base[5];
  logic [5:0] cfg_chunks;
  logic [15:0] cfg_rowbytes;
  assign cfg_chunks = 6'((32'(cfg_d) + LANES - 1) / LANES);
  assign cfg_rowbytes = cfg_i4 ? {9'd0, cfg_d[7:1]} : {8'd0, cfg_d};

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
  assign sel_buf = cfg_dbuf & b[32];
  assign run_kvb = cfg_dbuf & b[32];
  assign run_qb = cfg_dbuf & b[33];

  // ---------------------------------------------------------------- dispatcher
  logic can_issue, bad;
  always_comb begin
    can_issue = 1'b0;
    bad = 1'b0;
    if (have) begin
      case (f)
        4'd0: can_issue = !dma_busy && !core_busy;
        4'd1, 4'd3, 4'd4: can_issue = !dma_busy && !(core_in_run && core_kvb == sel_buf);
        4'd2: can_issue = !dma_busy && !(core_in_run && core_qb == sel_buf);
        4'd5:
        can_issue = !core_busy && !(dma_busy && ((dma_kind == 2'd1 && dma_buf == run_qb) ||
                                                 (dma_kind != 2'd1 && dma_buf == run_kvb)));
        4'd6: can_issue = !core_busy;
        4'd7, 4'd8: can_issue = 1'b1;
        default: can_issue = 1'b1;
      endcase
      // Commands the hardware cannot execute are dropped and flagged.
      case (f)
        4'd0: bad = a[3:0] > 4'd3 || (a[3:0] == 4'd0 && (b[15:0] == 16'd0 || b[15:0] > 16'd128 ||
                                                        b[3:0] != 4'd0 || (b[16] && b[4] != 1'b0))) ||
                    (a[3:0] == 4'd3 && a[7:4] > 4'd4);
        4'd1: bad = b[15:0] > 16'd64 || b[31:16] > 16'd64;
        4'd2, 4'd3, 4'd4, 4'd6: bad = b[15:0] > 16'd64;
        4'd5: bad = b[15:0] > 16'd64 || b[31:16] > 16'd64;
        4'd7, 4'd8: bad = 1'b0;
        default: bad = 1'b1;
      endcase
    end
  end
  assign pop = have && can_issue;
  assign dma_start = pop && !bad && (f == 4'd1 || f == 4'd2 || f == 4'd3 || f == 4'd4);
  assign run_start = pop && !bad && f == 4'd5;
  assign store_start = pop && !bad && f == 4'd6;

  logic [1:0] start_kind;
  assign start_kind = f == 4'd1 ? 2'd0 : f == 4'd2 ? 2'd1 : f == 4'd3 ? 2'd2 : 2'd3;
  logic [63:0] start_addr;
  assign start_addr = (f == 4'd1 ? base[3] : f == 4'd2 ? base[0] : f == 4'd3 ? base[1] : base[2]) + a;

  // ---------------------------------------------------------------- counters
  logic [63:0] cnt[NEV];
  logic [63:0] snap[NEV];
  logic active;
  assign active = dma_busy || core_busy || (have && f != 4'd7 && f != 4'd8);
  assign busy = dma_busy || core_busy || have;

  `include "sattn_probe.svh"

  always_ff @(posedge clk) begin
    resp_valid <= 1'b0;
    if (rst) begin
      head <= 4'd0;
      tail <= 4'd0;
      count <= 5'd0;
      illegal <= 1'b0;
      illegal_index <= 32'd0;
      dispatched <= 32'd0;
      cfg_d <= 8'd64;
      cfg_i4 <= 1'b0;
      cfg_causal <= 1'b0;
      cfg_dbuf <= 1'b1;
      cfg_off <= 32'sd0;
      cfg_mult <= 31'd1;
      cfg_shift <= 6'd0;
      cfg_spec <= 8'd0;
      cfg_format <= 1'b0;
      for (int i = 0; i < 5; i++) base[i] <= 64'd0;
      for (int i = 0; i < NEV; i++) begin
        cnt[i] <= 64'd0;
        snap[i] <= 64'd0;
      end
    end else begin
      if (push) begin
        fifo_funct[tail] <= cmd_funct > 7'd15 ? 4'd15 : cmd_funct[3:0];
        fifo_rs1[tail] <= cmd_rs1;
        fifo_rs2[tail] <= cmd_rs2;
        tail <= tail + 4'd1;
      end
      if (pop) head <= head + 4'd1;
      count <= count + 5'(push) - 5'(pop);

      // Events of this cycle; exactly one of busy/stall_* per active cycle.
      if (active) begin
        cnt[0] <= cnt[0] + 64'd1;
        if (core_mac) cnt[1] <= cnt[1] + 64'd1;
        else if (core_softmax) cnt[4] <= cnt[4] + 64'd1;
        else if (core_write) cnt[2] <= cnt[2] + 64'd1;
        else if (dma_busy && dma_kind == 2'd0) cnt[3] <= cnt[3] + 64'd1;
        else if (dma_busy) cnt[2] <= cnt[2] + 64'd1;
        else cnt[6] <= cnt[6] + 64'd1;
      end
      if (core_mac) cnt[7] <= cnt[7] + 64'(core_lanes);
      cnt[8] <= cnt[8] + 64'(core_skipped);
      if (dma_beat) cnt[9] <= cnt[9] + 64'd16;
      if (wr_valid && wr_ready) cnt[10] <= cnt[10] + 64'd16;
      if (dma_gather) cnt[11] <= cnt[11] + 64'd1;

      if (pop) begin
        dispatched <= dispatched + 32'd1;
        cnt[12] <= cnt[12] + 64'd1;
        if (bad) begin
          if (!illegal) illegal_index <= dispatched;
          illegal <= 1'b1;
        end else begin
          case (f)
            4'd0: begin
              case (a[3:0])
                4'd0: begin
                  cfg_d <= b[7:0];
                  cfg_i4 <= b[16];
                  cfg_causal <= b[17];
                  cfg_dbuf <= b[18];
                  cfg_off <= b[63:32];
                end
                4'd1: begin
                  cfg_spec <= b[7:0];
                  cfg_format <= b[8];
                end
                4'd2: begin
                  cfg_mult <= b[30:0];
                  cfg_shift <= b[37:32];
                end
                default: base[a[6:4]] <= b;
              endcase
            end
            4'd7: begin
              resp_valid <= 1'b1;
              resp_data <= a[7:0] < 8'(NEV) ? (a[8] ? snap[a[3:0]] : cnt[a[3:0]]) : 64'd0;
              if (a[9]) for (int i = 0; i < NEV; i++) snap[i] <= cnt[i];
              if (a[10]) for (int i = 0; i < NEV; i++) cnt[i] <= 64'd0;
            end
            4'd8: begin
              resp_valid <= 1'b1;
              resp_data <= a[0] ? PROBE_WORD1 : probe_word0;
            end
            default: ;
          endcase
        end
      end
    end
  end

  // ---------------------------------------------------------------- units
  sattn_dma dma (
      .clk, .rst, .cfg_i4, .cfg_rowbytes,
      .start(dma_start), .start_kind, .start_buf(sel_buf), .start_gather(b[33] && (f == 4'd3 || f == 4'd4)),
      .start_n(b[15:0]), .start_mrows(f == 4'd1 ? b[31:16] : 16'd0), .start_addr,
      .idx_rd_buf, .idx_rd_slot, .idx_rd_value, .idx_rd_run,
      .rd_req, .rd_addr, .rd_len, .rd_ready, .rd_beat_valid, .rd_beat_data,
      .sp_we, .sp_kind, .sp_buf, .sp_row, .sp_col, .sp_n, .sp_data,
      .busy(dma_busy), .cur_kind(dma_kind), .cur_buf(dma_buf), .beat_fire(dma_beat), .gather_fire(dma_gather),
      .state_code(dma_state));

  sattn_core #(.LANES(LANES)) core (
      .clk, .rst, .cfg_d, .cfg_chunks, .cfg_causal, .cfg_causal_offset(cfg_off), .cfg_mult, .cfg_shift,
      .run_start, .store_start, .issue_nq(b[15:0]), .issue_nk(b[31:16]), .issue_kvb(run_kvb), .issue_qb(run_qb),
      .issue_use_mask(b[34]), .issue_use_idx(b[35]), .issue_qpos0(a[31:0]), .issue_kpos0(a[63:32]),
      .issue_addr(base[4] + a),
      .sp_we, .sp_kind, .sp_buf, .sp_row, .sp_col, .sp_n, .sp_data,
      .idx_rd_buf, .idx_rd_slot, .idx_rd_value, .idx_rd_run,
      .wr_valid, .wr_addr, .wr_data, .wr_ready,
      .busy(core_busy), .in_run(core_in_run), .run_kvb(core_kvb), .run_qb(core_qb), .mac_cycle(core_mac),
      .softmax_cycle(core_softmax), .write_cycle(core_write), .lanes_active(core_lanes),
      .skipped_inc(core_skipped), .state_code(core_state));

  assign dbg_dma_state = dma_state;
  assign dbg_core_state = core_state;
  assign dbg_fifo_count = count;
  assign dbg_head_funct = f;

  // Unused fields of the CONFIG SPEC register are kept for software; reference them for lint.
  logic unused;
  assign unused = ^{cfg_spec, cfg_format};
endmodule

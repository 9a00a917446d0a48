// The read DMA: one load command at a time, one outstanding burst at a time. Contiguous loads
// are a single burst; gather loads (LOAD_K/LOAD_V with rs2[33]) issue one burst per run of
// consecutive key indices from the index RAM. Beats (16 bytes) are written straight into the
// scratchpad row they belong to; i4 bytes are unpacked to two sign-extended int8 (low nibble
// first) on the way. Beat and record sizes come from the generated package sattn_isa_pkg (hw/isa).
module sattn_dma
  import sattn_isa_pkg::*;
(
    input logic clk,
    input logic rst,
    input logic cfg_i4,
    input logic [15:0] cfg_rowbytes,  // D (i8) or D/2 (i4): a multiple of 16
    input logic cfg_v16,              // V rows are int16 (CONFIG QUANT v16) ...
    input logic [15:0] cfg_vrowbytes,  // ... of this many bytes (2 x D), else cfg_rowbytes
    // Issue (one-cycle pulse).
    input logic start,
    input logic [1:0] start_kind,  // 0 IDX, 1 Q, 2 K, 3 V
    input logic start_buf,
    input logic start_gather,
    input logic start_aux,  // LOAD_SCALE: start_mrows rows of start_n 32-bit words (kind 1 Q, 2 K, 3 bias)
    input logic [15:0] start_n,
    input logic [15:0] start_mrows,
    input logic [63:0] start_addr,
    // Index RAM read (gather).
    output logic idx_rd_buf,
    output logic [5:0] idx_rd_slot,
    input logic [31:0] idx_rd_value,
    input logic [31:0] idx_rd_run,
    // DRAM read port.
    output logic rd_req,
    output logic [63:0] rd_addr,
    output logic [31:0] rd_len,
    input logic rd_ready,
    input logic rd_beat_valid,
    input logic [127:0] rd_beat_data,
    // Scratchpad write.
    output logic sp_we,
    output logic [2:0] sp_kind,
    output logic sp_buf,
    output logic [5:0] sp_row,
    output logic [7:0] sp_col,
    output logic [5:0] sp_n,
    output logic [255:0] sp_data,
    // Status.
    output logic busy,
    output logic [1:0] cur_kind,
    output logic cur_buf,
    output logic beat_fire,
    output logic gather_fire,
    output logic [1:0] state_code
);
  typedef enum logic [1:0] {
    D_IDLE = 2'd0,
    D_REQ = 2'd1,
    D_DATA = 2'd2
  } dstate_t;
  dstate_t state;

  logic [1:0] kind;
  logic buffer, gather, aux;
  logic [6:0] n, slot, row;
  logic [15:0] mrows;
  logic [63:0] base;
  logic [31:0] left;  // bytes still to come in this burst
  logic [15:0] col_beat;  // beat within the current row (Q/K/V)
  logic [6:0] idx_beat;   // beat within the record (IDX)
  logic [6:0] entry_beats;

  assign busy = state != D_IDLE;
  assign cur_kind = kind;
  assign cur_buf = buffer;
  assign state_code = state;
  assign idx_rd_buf = buffer;
  assign idx_rd_slot = slot[5:0];

  // Bytes of one row of the current load: LOAD_SCALE rows of n words padded to beats; V rows
  // (v16: 2 x D); Q/K rows.
  logic [15:0] rowb;
  assign rowb = aux ? ((16'(n) + 16'd3) >> 2) << 4 : kind == 2'd3 ? cfg_vrowbytes : cfg_rowbytes;

  // The current burst: contiguous from base, or one run of the index RAM.
  logic [31:0] run_len;
  assign run_len = idx_rd_run == 32'd0 ? 32'd1 : idx_rd_run;
  always_comb begin
    rd_req = state == D_REQ;
    if (aux) begin
      rd_addr = base;
      rd_len = 32'(mrows) * 32'(rowb);
    end else if (gather) begin
      rd_addr = base + 64'(idx_rd_value) * 64'(rowb);
      rd_len = run_len * 32'(rowb);
    end else if (kind == 2'd0) begin
      rd_addr = base;
      // The record: n entries, then mrows mask rows, each padded to whole beats.
      rd_len = 32'(n + 7'(n[0])) * 32'(INDEX_ENTRY_BYTES) + 32'(mrows + 16'(mrows[0])) * 32'(MASK_ROW_BYTES);
    end else begin
      rd_addr = base;
      rd_len = 32'(n) * 32'(rowb);
    end
  end
  assign gather_fire = state == D_REQ && rd_ready && gather;
  assign beat_fire = state == D_DATA && rd_beat_valid;

  // Scratchpad write of the beat arriving this cycle.
  assign entry_beats = 7'((n + 7'(n[0])) >> 1);
  always_comb begin
    sp_we = beat_fire;
    sp_buf = buffer;
    sp_data = 256'd0;
    sp_col = 8'd0;
    sp_row = row[5:0];
    if (kind == 2'd0) begin
      sp_kind = idx_beat < entry_beats ? 3'd0 : 3'd4;
      sp_row = idx_beat < entry_beats ? {idx_beat[4:0], 1'b0} : {idx_beat[4:0] - entry_beats[4:0], 1'b0};
      sp_n = 6'd16;
      sp_data[127:0] = rd_beat_data;
    end else if (aux) begin  // four scale or bias words of row `row` from word col_beat * 4
      sp_kind = 3'd4 + {1'b0, kind};
      sp_n = 6'd4;
      sp_col = 8'({col_beat[3:0], 2'd0});
      sp_data[127:0] = rd_beat_data;
    end else if (kind == 2'd3 && cfg_v16) begin  // eight int16 V values from column col_beat * 8
      sp_kind = 3'd3;
      sp_n = 6'd8;
      sp_col = 8'({col_beat[4:0], 3'd0});
      sp_data[127:0] = rd_beat_data;
    end else begin
      sp_kind = {1'b0, kind};
      if (cfg_i4) begin
        sp_n = 6'd32;
        sp_col = 8'({col_beat[2:0], 5'd0});
        for (int j = 0; j < 16; j++) begin
          sp_data[16*j+:8] = {{4{rd_beat_data[8*j+3]}}, rd_beat_data[8*j+:4]};
          sp_data[16*j+8+:8] = {{4{rd_beat_data[8*j+7]}}, rd_beat_data[8*j+4+:4]};
        end
      end else begin
        sp_n = 6'd16;
        sp_col = 8'({col_beat[3:0], 4'd0});
        sp_data[127:0] = rd_beat_data;
      end
    end
  end

  always_ff @(posedge clk) begin
    if (rst) begin
      state <= D_IDLE;
      kind <= 2'd0;
      buffer <= 1'b0;
      gather <= 1'b0;
      aux <= 1'b0;
    end else begin
      case (state)
        D_IDLE: begin
          if (start) begin
            kind <= start_kind;
            buffer <= start_buf;
            gather <= start_gather;
            aux <= start_aux;
            n <= start_n[6:0];
            mrows <= start_mrows;
            base <= start_addr;
            slot <= 7'd0;
            if (start_aux ? (start_n != 16'd0 && start_mrows != 16'd0)
                          : (start_n != 16'd0 || (start_kind == 2'd0 && start_mrows != 16'd0)))
              state <= D_REQ;
          end
        end
        D_REQ: begin
          if (rd_ready) begin
            left <= rd_len;
            row <= gather ? slot : 7'd0;
            col_beat <= 16'd0;
            idx_beat <= 7'd0;
            state <= D_DATA;
          end
        end
        D_DATA: begin
          if (rd_beat_valid) begin
            idx_beat <= idx_beat + 7'd1;
            if (col_beat + 16'd1 == (rowb >> $clog2(BEAT_BYTES))) begin
              col_beat <= 16'd0;
              row <= row + 7'd1;
            end else begin
              col_beat <= col_beat + 16'd1;
            end
            left <= left - 32'(BEAT_BYTES);
            if (left <= 32'(BEAT_BYTES)) begin
              if (gather && slot + 7'(run_len) < n) begin
                slot <= slot + 7'(run_len);
                state <= D_REQ;
              end else begin
                state <= D_IDLE;
              end
            end
          end
        end
        default: state <= D_IDLE;
      endcase
    end
  end
endmodule

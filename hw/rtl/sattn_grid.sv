// The tile grid (hw/README.md "Grid"): ROWS x COLS copies of the tile (sattn_accel) and the
// grid's control (sattn_grid_ctrl: the work distributor with per-tile command feeds, the shared
// DRAM's bandwidth arbiters, the multicast DMA, the grid counters). This module only wires them.
// The host fills the command memory, the task table and the configuration through the load port
// while rst is high (hw/README.md "Grid MMIO"), then releases rst; `done` rises when every task
// has run. The DRAM timing (latency, bandwidth credit, queued bursts) is the harness's
// (hw/sim/dram_model.hpp SharedDram): it offers each channel's beat and write credit and takes
// the grants the control makes. Cycle-identical with sattn::accel::run_grid. (The Verilator
// harness runs sattn_grid_ctrl and the tiles as separate models wired as here: hw/README.md
// "Verilator speed"; this top is checked by `verilator --lint-only`, test hw.grid_top_lint.)
module sattn_grid
  import sattn_isa_pkg::*;
#(
    parameter int ROWS = 2,
    parameter int COLS = 2,
    parameter int LANES = 16,
    parameter int CMD_AW = 17,  // command memory: 2^CMD_AW commands
    parameter int GRP_AW = 14   // task groups: 2^GRP_AW (tasks: 2^GRP_AW x tiles)
) (
    input logic clk,
    input logic rst,
    // Load port (the host's MMIO writes; hw/README.md "Grid MMIO").
    input logic ld_we,
    input logic [1:0] ld_sel,  // 0 configuration, 1 command, 2 group, 3 task
    input logic [31:0] ld_addr,
    input logic [63:0] ld_d0,
    input logic [63:0] ld_d1,
    input logic [8:0] ld_d2,
    output logic done,
    // Shared DRAM, per channel c (channels >= ports unused): read grant, beat, write credit/grant.
    output logic rg_valid[ROWS*COLS],
    output logic [7:0] rg_id[ROWS*COLS],
    input logic beat_valid[ROWS*COLS],
    input logic [7:0] beat_owner[ROWS*COLS],
    input logic [127:0] beat_data[ROWS*COLS],
    input logic wr_credit[ROWS*COLS],
    output logic wg_valid[ROWS*COLS],
    output logic [7:0] wg_id[ROWS*COLS],
    // Per tile: the burst it offers and the beat it writes (the harness reads the granted ones).
    output logic [63:0] rd_addr[ROWS*COLS],
    output logic [31:0] rd_len[ROWS*COLS],
    output logic [63:0] wr_addr[ROWS*COLS],
    output logic [127:0] wr_data[ROWS*COLS],
    // Counter read-out: tile `ctr_tile`, event `ctr_sel` (hw/README.md "Grid counters").
    input logic [7:0] ctr_tile,
    input logic [5:0] ctr_sel,
    output logic [63:0] ctr_value,
    // Diagnostics per tile.
    output logic illegal[ROWS*COLS],
    output logic [31:0] illegal_index[ROWS*COLS],
    output logic [31:0] dispatched[ROWS*COLS],
    output logic [1:0] dbg_dma_state[ROWS*COLS],
    output logic [3:0] dbg_core_state[ROWS*COLS],
    output logic [4:0] dbg_fifo_count[ROWS*COLS],
    output logic [3:0] dbg_head_funct[ROWS*COLS],
    output logic dbg_feed_empty[ROWS*COLS]
);
  localparam int T = ROWS * COLS;

  logic t_cmd_valid[T], t_cmd_ready[T];
  logic [1:0] t_cmd_mc[T], t_head_mc[T];
  logic [6:0] t_cmd_funct[T];
  logic [63:0] t_cmd_rs1[T], t_cmd_rs2[T];
  logic t_busy[T], t_rd_req[T], t_rd_ready[T], t_beat_valid[T];
  logic [127:0] t_beat_data[T];
  logic t_wr_valid[T], t_wr_ready[T];
  logic t_head_ready[T], t_hold[T], t_issue[T];
  logic [63:0] t_ctr_value[T];
  logic [3:0] t_ctr_sel;

  sattn_grid_ctrl #(.ROWS(ROWS), .COLS(COLS), .CMD_AW(CMD_AW), .GRP_AW(GRP_AW)) ctrl (
      .clk, .rst, .ld_we, .ld_sel, .ld_addr, .ld_d0, .ld_d1, .ld_d2, .done,
      .rg_valid, .rg_id, .beat_valid, .beat_owner, .beat_data, .wr_credit, .wg_valid, .wg_id,
      .ctr_tile, .ctr_sel, .ctr_value, .dbg_feed_empty,
      .t_cmd_valid, .t_cmd_ready, .t_cmd_funct, .t_cmd_rs1, .t_cmd_rs2, .t_cmd_mc, .t_busy, .t_rd_req,
      .t_rd_ready, .t_beat_valid, .t_beat_data, .t_wr_valid, .t_wr_ready, .t_head_mc, .t_head_ready,
      .t_hold, .t_issue, .t_head_funct(dbg_head_funct), .t_dma_state(dbg_dma_state), .t_ctr_sel,
      .t_ctr_value);

  for (genvar i = 0; i < T; i++) begin : tile
    logic resp_valid_unused;
    logic [63:0] resp_data_unused;
    sattn_accel #(.LANES(LANES)) accel (
        .clk, .rst,
        .cmd_valid(t_cmd_valid[i]), .cmd_ready(t_cmd_ready[i]), .cmd_funct(t_cmd_funct[i]),
        .cmd_rs1(t_cmd_rs1[i]), .cmd_rs2(t_cmd_rs2[i]),
        .resp_valid(resp_valid_unused), .resp_data(resp_data_unused), .busy(t_busy[i]),
        .rd_req(t_rd_req[i]), .rd_addr(rd_addr[i]), .rd_len(rd_len[i]), .rd_ready(t_rd_ready[i]),
        .rd_beat_valid(t_beat_valid[i]), .rd_beat_data(t_beat_data[i]),
        .wr_valid(t_wr_valid[i]), .wr_addr(wr_addr[i]), .wr_data(wr_data[i]), .wr_ready(t_wr_ready[i]),
        .illegal(illegal[i]), .illegal_index(illegal_index[i]), .dispatched(dispatched[i]),
        .dbg_dma_state(dbg_dma_state[i]), .dbg_core_state(dbg_core_state[i]),
        .dbg_fifo_count(dbg_fifo_count[i]), .dbg_head_funct(dbg_head_funct[i]),
        .cmd_mc(t_cmd_mc[i]), .head_mc(t_head_mc[i]), .head_ready(t_head_ready[i]),
        .issue_hold(t_hold[i]), .issue(t_issue[i]), .ctr_sel(t_ctr_sel), .ctr_value(t_ctr_value[i]));
  end
endmodule

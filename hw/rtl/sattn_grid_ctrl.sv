// The tile grid's control (hw/README.md "Grid RTL"): everything of sattn_grid but the tiles. A
// work distributor with per-tile command feeds (sattn_grid_dist), one shared DRAM with `ports`
// channels and a bandwidth arbiter (sattn_grid_arb, one per channel for reads and one for
// writes), a multicast DMA (a K/V/index load marked multicast issues on every tile sharing it
// in the same cycle: the gang, or the heads of one query tile; only the first of them requests,
// every one receives each beat), and
// the grid counters. The host fills the command memory, the task table and the configuration
// through the load port while rst is high (hw/README.md "Grid MMIO"), then releases rst; `done`
// rises when every task has run. The DRAM timing (latency, bandwidth credit, queued bursts) is
// the harness's (hw/sim/dram_model.hpp SharedDram): it offers each channel's beat and write credit
// and takes the grants this module makes. The tiles' outputs it reads (busy, rd_req, wr_valid,
// head_*, cmd_ready, the head's funct and the DMA state) are their registers'; only `issue`
// depends on this module's t_hold, and only this module's registers read it. sattn_grid wires
// it to the tiles; the Verilator harness runs it and the tiles as separate models (hw/README.md
// "Verilator speed"). Cycle-identical with sattn::accel::run_grid.
module sattn_grid_ctrl
  import sattn_isa_pkg::*;
#(
    parameter int ROWS = 2,
    parameter int COLS = 2,
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
    // Counter read-out: tile `ctr_tile`, event `ctr_sel` (hw/README.md "Grid counters").
    input logic [7:0] ctr_tile,
    input logic [5:0] ctr_sel,
    output logic [63:0] ctr_value,
    output logic dbg_feed_empty[ROWS*COLS],
    // The tiles (sattn_accel, instantiated beside this module by sattn_grid): their command
    // feed, grid hooks, DRAM grants and beats, and the counter read port.
    output logic t_cmd_valid[ROWS*COLS],
    input logic t_cmd_ready[ROWS*COLS],
    output logic [6:0] t_cmd_funct[ROWS*COLS],
    output logic [63:0] t_cmd_rs1[ROWS*COLS],
    output logic [63:0] t_cmd_rs2[ROWS*COLS],
    output logic [1:0] t_cmd_mc[ROWS*COLS],
    input logic t_busy[ROWS*COLS],
    input logic t_rd_req[ROWS*COLS],
    output logic t_rd_ready[ROWS*COLS],
    output logic t_beat_valid[ROWS*COLS],
    output logic [127:0] t_beat_data[ROWS*COLS],
    input logic t_wr_valid[ROWS*COLS],
    output logic t_wr_ready[ROWS*COLS],
    input logic [1:0] t_head_mc[ROWS*COLS],
    input logic t_head_ready[ROWS*COLS],
    output logic t_hold[ROWS*COLS],
    input logic t_issue[ROWS*COLS],
    input logic [3:0] t_head_funct[ROWS*COLS],
    input logic [1:0] t_dma_state[ROWS*COLS],
    output logic [3:0] t_ctr_sel,
    input logic [63:0] t_ctr_value[ROWS*COLS]
);
  localparam int T = ROWS * COLS;

  // ---------------------------------------------------------------- configuration (MMIO)
  logic [1:0] sched;      // 0 static, 1 zigzag, 2 dynamic
  logic [7:0] gm;         // tiles per multicast group (1: none); divides T
  logic [7:0] gh;         // of them, the heads of one query tile (a load marked 2 is theirs); divides gm
  logic [7:0] ports;      // DRAM channels, 1..T
  logic arb_fixed;        // 0 round robin, 1 fixed priority
  logic [31:0] ngroups;   // task groups
  logic [31:0] nprologue; // commands every tile runs first (CONFIG)
  always_ff @(posedge clk)
    if (ld_we && ld_sel == 2'd0)
      case (ld_addr[2:0])
        3'd0: sched <= ld_d0[1:0];
        3'd1: gm <= ld_d0[7:0];
        3'd2: ports <= ld_d0[7:0];
        3'd3: arb_fixed <= ld_d0[0];
        3'd4: ngroups <= ld_d0[31:0];
        3'd5: nprologue <= ld_d0[31:0];
        3'd6: gh <= ld_d0[7:0];
        default: ;
      endcase

  // Where each tile sits: its gang (multicast group of tiles), member index, leader, its query
  // tile's heads (hsub) and their leader, channel.
  logic [7:0] gang[T], member[T], leader[T], hsub[T], hleader[T], chan[T];
  logic [7:0] ngangs;
  always_ff @(posedge clk)
    if (rst) begin
      ngangs <= 8'(T / 32'(gm));
      for (int i = 0; i < T; i++) begin
        gang[i] <= 8'(i / 32'(gm));
        member[i] <= 8'(i % 32'(gm));
        leader[i] <= 8'((i / 32'(gm)) * 32'(gm));
        hsub[i] <= 8'(i / 32'(gh));
        hleader[i] <= 8'((i / 32'(gh)) * 32'(gh));
        chan[i] <= 8'(i % 32'(ports));
      end
    end

  assign t_ctr_sel = ctr_sel[3:0];

  // ---------------------------------------------------------------- work distributor and feeds
  logic feed_empty[T];
  logic no_more_tasks;
  logic [63:0] tile_tasks[T];
  sattn_grid_dist #(.T(T), .CMD_AW(CMD_AW), .GRP_AW(GRP_AW)) distributor (
      .clk, .rst, .ld_we, .ld_sel, .ld_addr, .ld_d0, .ld_d1, .ld_d2,
      .sched, .gm, .ngangs, .ngroups, .nprologue, .gang, .member,
      .cmd_valid(t_cmd_valid), .cmd_ready(t_cmd_ready), .cmd_funct(t_cmd_funct), .cmd_rs1(t_cmd_rs1),
      .cmd_rs2(t_cmd_rs2), .cmd_mc(t_cmd_mc), .feed_empty, .no_more_tasks, .tasks(tile_tasks));
  assign dbg_feed_empty = feed_empty;

  always_comb begin
    done = no_more_tasks;
    for (int i = 0; i < T; i++) done = done && !t_busy[i] && feed_empty[i];
  end

  // ---------------------------------------------------------------- multicast issue
  // A head command marked multicast issues on every tile sharing it (mc 1: the gang, 2: the heads
  // of its query tile) in the same cycle or on none: each tile's issue is held until all of them
  // can issue a load marked alike.
  logic group_ready[T], heads_ready[T];
  always_comb begin
    for (int k = 0; k < T; k++) begin
      group_ready[k] = 1'b1;
      heads_ready[k] = 1'b1;
    end
    for (int i = 0; i < T; i++) begin
      group_ready[gang[i]] = group_ready[gang[i]] && t_head_ready[i] && t_head_mc[i] == 2'd1;
      heads_ready[hsub[i]] = heads_ready[hsub[i]] && t_head_ready[i] && t_head_mc[i] == 2'd2;
    end
    for (int i = 0; i < T; i++)
      t_hold[i] = (t_head_mc[i] == 2'd1 && !group_ready[gang[i]]) || (t_head_mc[i] == 2'd2 && !heads_ready[hsub[i]]);
  end

  // How each tile's DMA load is shared (it then follows that leader's grants and beats).
  logic [1:0] dma_shared[T];
  logic [7:0] src[T];
  function automatic logic is_load(logic [3:0] f);
    return f == FUNCT_LOAD_IDX || f == FUNCT_LOAD_Q || f == FUNCT_LOAD_K || f == FUNCT_LOAD_V ||
           f == FUNCT_LOAD_SCALE;
  endfunction
  always_ff @(posedge clk)
    for (int i = 0; i < T; i++)
      if (rst) dma_shared[i] <= 2'd0;
      else if (t_issue[i] && is_load(t_head_funct[i])) dma_shared[i] <= t_head_mc[i];
  always_comb
    for (int i = 0; i < T; i++)
      src[i] = dma_shared[i] == 2'd1 ? leader[i] : dma_shared[i] == 2'd2 ? hleader[i] : 8'(i);

  // ---------------------------------------------------------------- shared DRAM arbiters
  logic rd_want[T], rd_fire[T], wr_fire[T];
  always_comb for (int i = 0; i < T; i++) rd_want[i] = t_rd_req[i] && src[i] == 8'(i);
  sattn_grid_arb #(.T(T)) read_arb (
      .clk, .rst, .ports, .fixed(arb_fixed), .chan, .want(rd_want), .credit('{default: 1'b1}),
      .grant_valid(rg_valid), .grant_id(rg_id), .fire(rd_fire));
  sattn_grid_arb #(.T(T)) write_arb (
      .clk, .rst, .ports, .fixed(arb_fixed), .chan, .want(t_wr_valid), .credit(wr_credit),
      .grant_valid(wg_valid), .grant_id(wg_id), .fire(wr_fire));
  assign t_wr_ready = wr_fire;

  // Each tile takes the grants and beats of its source (itself, or its leader for a multicast load).
  logic beat_mine[T];
  always_comb
    for (int i = 0; i < T; i++) begin
      t_rd_ready[i] = rd_fire[src[i]];
      beat_mine[i] = beat_valid[chan[src[i]]] && beat_owner[chan[src[i]]] == src[i];
      t_beat_valid[i] = beat_mine[i];
      t_beat_data[i] = beat_data[chan[src[i]]];
    end

  // ---------------------------------------------------------------- grid counters
  logic [63:0] cycle, makespan, dram_rd, dram_wr, mc_loads;
  logic [63:0] fin[T], stall_arb[T], stall_mc[T], mc_bytes[T];
  always_ff @(posedge clk)
    if (rst) begin
      cycle <= 64'd0;
      makespan <= 64'd0;
      dram_rd <= 64'd0;
      dram_wr <= 64'd0;
      mc_loads <= 64'd0;
      for (int i = 0; i < T; i++) begin
        fin[i] <= 64'd0;
        stall_arb[i] <= 64'd0;
        stall_mc[i] <= 64'd0;
        mc_bytes[i] <= 64'd0;
      end
    end else begin
      logic [63:0] rd_beats, wr_beats, loads;
      cycle <= cycle + 64'd1;
      rd_beats = 64'd0;
      wr_beats = 64'd0;
      loads = 64'd0;
      for (int c = 0; c < T; c++)
        if (8'(c) < ports) begin
          rd_beats = rd_beats + 64'(beat_valid[c]);
          wr_beats = wr_beats + 64'(wg_valid[c]);
        end
      for (int i = 0; i < T; i++) begin
        if (t_busy[i]) begin
          fin[i] <= cycle;
          makespan <= cycle;
        end
        if (rd_want[i] && !rd_fire[i]) stall_arb[i] <= stall_arb[i] + 64'd1;
        if (t_head_ready[i] && t_hold[i]) stall_mc[i] <= stall_mc[i] + 64'd1;
        if (beat_mine[i] && t_dma_state[i] == 2'd2 && src[i] != 8'(i))
          mc_bytes[i] <= mc_bytes[i] + 64'(BEAT_BYTES);
        if (t_issue[i] && ((t_head_mc[i] == 2'd1 && 8'(i) == leader[i]) || (t_head_mc[i] == 2'd2 && 8'(i) == hleader[i])))
          loads = loads + 64'd1;
      end
      dram_rd <= dram_rd + rd_beats * 64'(BEAT_BYTES);
      dram_wr <= dram_wr + wr_beats * 64'(BEAT_BYTES);
      mc_loads <= mc_loads + loads;
    end

  always_comb begin
    ctr_value = 64'd0;
    for (int i = 0; i < T; i++)
      if (ctr_tile == 8'(i))
        case (ctr_sel)
          6'd16: ctr_value = stall_arb[i];
          6'd17: ctr_value = stall_mc[i];
          6'd18: ctr_value = mc_bytes[i];
          6'd19: ctr_value = tile_tasks[i];
          6'd20: ctr_value = fin[i];
          6'd21: ctr_value = makespan - fin[i];
          default: ctr_value = ctr_sel < 6'd16 ? t_ctr_value[i] : 64'd0;
        endcase
    case (ctr_sel)
      6'd24: ctr_value = dram_rd;
      6'd25: ctr_value = dram_wr;
      6'd26: ctr_value = mc_loads;
      6'd27: ctr_value = makespan;
      default: ;
    endcase
  end
endmodule

// The grid's work distributor and command feeds (hw/README.md "Grid scheduling"). The command
// memory holds the program; the task table holds, per task group (the query tile of one head,
// or of the `gm` heads of a GQA group that share their K/V loads), each member's command range
// and the bounds of its zigzag run (the groups of one batch and head set). Every tile first
// feeds the prologue (commands [0, nprologue): CONFIG), then its tasks' ranges back to back,
// one command per cycle while its FIFO has room. The tiles of a gang (multicast group) take the
// members of one task group. Schedules:
//   static  gang k runs task-group positions k, k + G, k + 2G, ... (G gangs)
//   zigzag  positions in pairs: 2k, 2k+1, 2k + 2G, 2k + 2G + 1, ...; position p of a run
//           [lo, hi) is group lo + p/2 (p even) or hi - 1 - (p-1)/2 (p odd): early and late
//           query tiles alternate
//   dynamic a gang whose tiles have fed all their commands takes the next group (lowest gang
//           first, several gangs in one cycle)
module sattn_grid_dist #(
    parameter int T = 4,
    parameter int CMD_AW = 17,
    parameter int GRP_AW = 14
) (
    input logic clk,
    input logic rst,
    input logic ld_we,
    input logic [1:0] ld_sel,
    /* verilator lint_off UNUSEDSIGNAL */
    input logic [31:0] ld_addr,  // the memories use its low bits
    /* verilator lint_on UNUSEDSIGNAL */
    input logic [63:0] ld_d0,
    input logic [63:0] ld_d1,
    input logic [8:0] ld_d2,
    input logic [1:0] sched,
    input logic [7:0] gm,
    input logic [7:0] ngangs,
    input logic [31:0] ngroups,
    input logic [31:0] nprologue,
    input logic [7:0] gang[T],
    input logic [7:0] member[T],
    // Per tile: the command offered to its FIFO.
    output logic cmd_valid[T],
    input logic cmd_ready[T],
    output logic [6:0] cmd_funct[T],
    output logic [63:0] cmd_rs1[T],
    output logic [63:0] cmd_rs2[T],
    output logic [1:0] cmd_mc[T],
    output logic feed_empty[T],
    output logic no_more_tasks,
    output logic [63:0] tasks[T]
);
  localparam int TW = T > 1 ? $clog2(T) : 1;
  localparam int TASK_AW = GRP_AW + TW;

  // ---------------------------------------------------------------- memories (loaded by the host)
  logic [8:0] mem_funct[2**CMD_AW];  // bits 8:7: multicast (0 none, 1 the gang, 2 the heads of one query tile)
  logic [63:0] mem_rs1[2**CMD_AW];
  logic [63:0] mem_rs2[2**CMD_AW];
  logic [31:0] grp_lo[2**GRP_AW], grp_hi[2**GRP_AW];
  logic [31:0] task_begin[2**TASK_AW], task_end[2**TASK_AW];
  always_ff @(posedge clk)
    if (ld_we)
      case (ld_sel)
        2'd1: begin
          mem_funct[ld_addr[CMD_AW-1:0]] <= ld_d2;
          mem_rs1[ld_addr[CMD_AW-1:0]] <= ld_d0;
          mem_rs2[ld_addr[CMD_AW-1:0]] <= ld_d1;
        end
        2'd2: begin
          grp_lo[ld_addr[GRP_AW-1:0]] <= ld_d0[31:0];
          grp_hi[ld_addr[GRP_AW-1:0]] <= ld_d0[63:32];
        end
        2'd3: begin
          task_begin[ld_addr[TASK_AW-1:0]] <= ld_d0[31:0];
          task_end[ld_addr[TASK_AW-1:0]] <= ld_d0[63:32];
        end
        default: ;
      endcase

  // ---------------------------------------------------------------- feeds
  logic act[T];            // a range is being fed
  logic [31:0] ptr[T];     // its next command
  logic [31:0] fend[T];    // its end
  logic [31:0] pos[T];     // static/zigzag: the next task-group position of the tile's gang
  logic [31:0] next_group; // dynamic: the next task group to hand out
  logic dyn, zig;
  assign dyn = sched == 2'd2;
  assign zig = sched == 2'd1;
  assign no_more_tasks = !dyn || next_group >= ngroups;
  always_comb for (int i = 0; i < T; i++) feed_empty[i] = !act[i] && (dyn || pos[i] >= ngroups);

  // Dynamic: gangs whose feeds are all empty take groups next_group, next_group + 1, ... in order.
  logic gang_empty[T], gang_assigned[T];
  logic [31:0] gang_group[T];
  logic [31:0] handed;
  always_comb begin
    for (int k = 0; k < T; k++) gang_empty[k] = 1'b1;
    for (int i = 0; i < T; i++) gang_empty[gang[i]] = gang_empty[gang[i]] && feed_empty[i];
    handed = 32'd0;
    for (int k = 0; k < T; k++) begin
      gang_group[k] = next_group + handed;
      gang_assigned[k] = dyn && 8'(k) < ngangs && gang_empty[k] && next_group + handed < ngroups;
      if (gang_assigned[k]) handed = handed + 32'd1;
    end
  end

  // The zigzag order: task-group position p -> task group.
  function automatic logic [31:0] order(logic [31:0] p);
    logic [31:0] lo, hi, q;
    lo = grp_lo[p[GRP_AW-1:0]];
    hi = grp_hi[p[GRP_AW-1:0]];
    q = p - lo;
    if (!zig) return p;
    return q[0] ? hi - 32'd1 - ((q - 32'd1) >> 1) : lo + (q >> 1);
  endfunction

  logic fresh[T];  // the offered command starts a new range
  logic [31:0] idx[T], nb[T], ne[T];
  always_comb
    for (int i = 0; i < T; i++) begin
      logic [31:0] g;
      fresh[i] = 1'b0;
      cmd_valid[i] = 1'b0;
      g = 32'd0;
      if (!dyn) g = order(pos[i]);
      else g = gang_group[gang[i]];
      nb[i] = task_begin[TASK_AW'(g * 32'(gm) + 32'(member[i]))];
      ne[i] = task_end[TASK_AW'(g * 32'(gm) + 32'(member[i]))];
      idx[i] = ptr[i];
      if (act[i]) begin
        cmd_valid[i] = 1'b1;
      end else if ((!dyn && pos[i] < ngroups) || (dyn && gang_assigned[gang[i]])) begin
        cmd_valid[i] = 1'b1;
        fresh[i] = 1'b1;
        idx[i] = nb[i];
      end
      cmd_funct[i] = mem_funct[idx[i][CMD_AW-1:0]][6:0];
      cmd_mc[i] = mem_funct[idx[i][CMD_AW-1:0]][8:7];
      cmd_rs1[i] = mem_rs1[idx[i][CMD_AW-1:0]];
      cmd_rs2[i] = mem_rs2[idx[i][CMD_AW-1:0]];
    end

  always_ff @(posedge clk)
    if (rst) begin
      next_group <= 32'd0;
      for (int i = 0; i < T; i++) begin
        act[i] <= nprologue != 32'd0;
        ptr[i] <= 32'd0;
        fend[i] <= nprologue;
        pos[i] <= zig ? 32'(gang[i]) << 1 : 32'(gang[i]);
        tasks[i] <= 64'd0;
      end
    end else begin
      logic [31:0] handed_now;
      handed_now = 32'd0;
      for (int k = 0; k < T; k++) if (gang_assigned[k]) handed_now = handed_now + 32'd1;
      next_group <= next_group + handed_now;
      for (int i = 0; i < T; i++) begin
        logic push;
        push = cmd_valid[i] && cmd_ready[i];
        if (act[i]) begin
          if (push) begin
            ptr[i] <= ptr[i] + 32'd1;
            if (ptr[i] + 32'd1 == fend[i]) act[i] <= 1'b0;
          end
        end else if (fresh[i] && dyn) begin
          // Handed out this cycle: latched whether or not its first command went in.
          tasks[i] <= tasks[i] + 64'd1;
          fend[i] <= ne[i];
          ptr[i] <= push ? nb[i] + 32'd1 : nb[i];
          act[i] <= !push || nb[i] + 32'd1 != ne[i];
        end else if (fresh[i] && push) begin
          tasks[i] <= tasks[i] + 64'd1;
          pos[i] <= zig ? (pos[i][0] ? pos[i] + (32'(ngangs) << 1) - 32'd1 : pos[i] + 32'd1)
                        : pos[i] + 32'(ngangs);
          fend[i] <= ne[i];
          ptr[i] <= nb[i] + 32'd1;
          act[i] <= nb[i] + 32'd1 != ne[i];
        end
      end
    end
endmodule

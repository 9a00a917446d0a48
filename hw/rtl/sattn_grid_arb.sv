// The shared DRAM's bandwidth arbiter (hw/README.md "Grid"): requester r (a tile, or a multicast
// group's leader) uses channel chan[r] = r mod ports. Per channel and cycle it grants at most one
// requester whose `want` is up, when the channel has `credit`: round robin (the first requester
// after the one granted last on that channel, wrapping) or fixed (the lowest index). One
// instance arbitrates read bursts, another write beats. As hw/sim/dram_model.hpp SharedDram::pick.
module sattn_grid_arb #(
    parameter int T = 4
) (
    input logic clk,
    input logic rst,
    input logic [7:0] ports,
    input logic fixed,
    input logic [7:0] chan[T],
    input logic want[T],
    input logic credit[T],  // per channel
    output logic grant_valid[T],  // per channel
    output logic [7:0] grant_id[T],
    output logic fire[T]  // per requester
);
  logic [7:0] last[T];
  logic last_valid[T];

  always_comb begin
    for (int c = 0; c < T; c++) begin
      grant_valid[c] = 1'b0;
      grant_id[c] = 8'd0;
      if (8'(c) < ports && credit[c]) begin
        // After the last grant first (round robin), then from the lowest requester.
        if (!fixed && last_valid[c])
          for (int r = 0; r < T; r++)
            if (!grant_valid[c] && chan[r] == 8'(c) && want[r] && 8'(r) > last[c]) begin
              grant_valid[c] = 1'b1;
              grant_id[c] = 8'(r);
            end
        for (int r = 0; r < T; r++)
          if (!grant_valid[c] && chan[r] == 8'(c) && want[r]) begin
            grant_valid[c] = 1'b1;
            grant_id[c] = 8'(r);
          end
      end
    end
    for (int r = 0; r < T; r++) fire[r] = grant_valid[chan[r]] && grant_id[chan[r]] == 8'(r);
  end

  always_ff @(posedge clk)
    for (int c = 0; c < T; c++)
      if (rst) last_valid[c] <= 1'b0;
      else if (grant_valid[c]) begin
        last_valid[c] <= 1'b1;
        last[c] <= grant_id[c];
      end
endmodule

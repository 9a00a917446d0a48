// PROBE words (hw/README.md "PROBE"). Word 0: version 1, LANES, every spec (0xff), i8 and i4
// (precision codes 2 and 3: 0x0c), QROWS 64, KSLOTS 64, DMAX 128, double buffering, causal,
// gather. Word 1: scratchpad bytes: Q, K, V 2 x 64 x 128 each, index RAM 2 x 64 x 8, masks 2 x 64 x 8.
localparam logic [63:0] PROBE_WORD1 = 64'd51200;
logic [63:0] probe_word0;
assign probe_word0 = {5'd0, 3'b111, 8'd128, 8'd64, 8'd64, 8'h0c, 8'hff, 8'(LANES), 8'd1};

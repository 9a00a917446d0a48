// The `sattn` dialect (issue 10): one op per attention problem and one per lowered backend call.
#ifndef SATTN_OPS_TD
#define SATTN_OPS_TD

include "mlir/IR/OpBase.td"

def Sattn_Dialect : Dialect {
  let name = "sattn";
  let cppNamespace = "::sattn_mlir";
  let summary = "Multi-spec sparse attention (libsattn)";
  let useFoldAPI = kEmitFoldAdaptorFolder;
}

// Attribute types as libsattn reads them: integers of any width, numbers (float or integer),
// booleans (true/false, a unit attribute, or 0/1), strings.
def Sattn_Int : Attr<CPred<"::llvm::isa<::mlir::IntegerAttr>($_self)">, "integer attribute"> {
  let storageType = "::mlir::Attribute";
  let returnType = "::mlir::Attribute";
  let convertFromStorage = "$_self";
}
def Sattn_Number : Attr<CPred<"::llvm::isa<::mlir::IntegerAttr, ::mlir::FloatAttr>($_self)">,
                        "number attribute (float or integer)"> {
  let storageType = "::mlir::Attribute";
  let returnType = "::mlir::Attribute";
  let convertFromStorage = "$_self";
}
def Sattn_Bool : Attr<CPred<"::llvm::isa<::mlir::BoolAttr, ::mlir::UnitAttr, ::mlir::IntegerAttr>($_self)">,
                      "boolean attribute (true/false, unit, 0/1)"> {
  let storageType = "::mlir::Attribute";
  let returnType = "::mlir::Attribute";
  let convertFromStorage = "$_self";
}

class Sattn_Op<string mnemonic> : Op<Sattn_Dialect, mnemonic> {
  // Every attribute of DESIGN §3, typed; ranges and cross-attribute rules are libsattn's
  // validate() (through the bridge), so the messages are sattn-select's.
  dag opAttrs = (ins
    OptionalAttr<StrAttr>:$name,
    OptionalAttr<Sattn_Int>:$batch, OptionalAttr<Sattn_Int>:$heads, OptionalAttr<Sattn_Int>:$kv_heads,
    OptionalAttr<Sattn_Int>:$seq_len, OptionalAttr<Sattn_Int>:$kv_len, OptionalAttr<Sattn_Int>:$head_dim,
    OptionalAttr<Sattn_Bool>:$causal, OptionalAttr<Sattn_Number>:$scale, OptionalAttr<StrAttr>:$precision,
    OptionalAttr<Sattn_Number>:$scale_q, OptionalAttr<Sattn_Number>:$scale_k, OptionalAttr<Sattn_Number>:$scale_v,
    OptionalAttr<StrAttr>:$spec, OptionalAttr<StrAttr>:$selection,
    OptionalAttr<Sattn_Int>:$window_size, OptionalAttr<Sattn_Int>:$dilation, OptionalAttr<Sattn_Bool>:$wrap,
    OptionalAttr<Sattn_Int>:$block_size, OptionalAttr<Sattn_Int>:$comp_block_size,
    OptionalAttr<Sattn_Int>:$window_blocks, OptionalAttr<Sattn_Int>:$global_tokens,
    OptionalAttr<Sattn_Number>:$keep_ratio, OptionalAttr<Sattn_Int>:$nm_n, OptionalAttr<Sattn_Int>:$nm_m,
    OptionalAttr<Sattn_Int>:$topk_k, OptionalAttr<Sattn_Int>:$lsh_buckets, OptionalAttr<Sattn_Int>:$lsh_rounds,
    OptionalAttr<Sattn_Int>:$seed, OptionalAttr<Sattn_Int>:$num_landmarks, OptionalAttr<Sattn_Int>:$landmark_iters,
    OptionalAttr<Sattn_Int>:$page_size, OptionalAttr<Sattn_Int>:$top_pages,
    OptionalAttr<Sattn_Int>:$gqa_group_size,
    OptionalAttr<Sattn_Int>:$tile_M, OptionalAttr<Sattn_Int>:$tile_S, OptionalAttr<Sattn_Int>:$tile_D,
    OptionalAttr<Sattn_Int>:$tile_rows);
  let assemblyFormat = "attr-dict";
  let hasVerifier = 1;
}

def Sattn_SparseAttentionOp : Sattn_Op<"sparse_attention"> {
  let summary = "One attention problem and its sparsity pattern attributes";
  let arguments = opAttrs;
}

class Sattn_CallOp<string mnemonic, string backend> : Sattn_Op<mnemonic> {
  let summary = "A sparse attention op lowered to the " # backend # " backend: resolved parameters";
  let arguments = !con(opAttrs, (ins
    OptionalAttr<Sattn_Bool>:$blg_enabled, OptionalAttr<Sattn_Bool>:$nm_enabled,
    OptionalAttr<Sattn_Bool>:$topk_enabled, OptionalAttr<Sattn_Bool>:$lsh_enabled));
}
def Sattn_RvvCallOp : Sattn_CallOp<"rvv_call", "RVV">;
def Sattn_RoccCallOp : Sattn_CallOp<"rocc_call", "RoCC accelerator">;

#endif

#!/usr/bin/env python3
"""Train the small byte-level transformer of data/model.py on the corpus of
data/make_corpus.py.  See data/README.md.

  python3 data/train.py                                 # full run (CUDA)
  python3 data/train.py --device cpu --steps 20 --tiny  # CPU smoke test

The LR schedule is warmup + cosine over --steps.  With --steps 0 (default)
the step count is fixed from a wall-clock budget: after --calib-steps timed
steps, steps = (max-seconds budget) / (time per step); the number chosen is
logged so that a rerun can pass it with --steps.  Data order is fixed by
--seed (windows drawn with a seeded torch.Generator on the CPU).
The checkpoint kept is the one with the best validation loss.
"""
import argparse
import contextlib
import json
import math
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import Config, ByteLM, load_corpus  # noqa: E402


def parse(argv=None):
    ap = argparse.ArgumentParser(description="train the byte-level LM for data/real")
    ap.add_argument("--corpus", default=".gpu-carry/corpus")
    ap.add_argument("--ckpt", default=".gpu-carry/model/ckpt.pt")
    ap.add_argument("--log", default="data/real/train-log.json")
    ap.add_argument("--device", default="auto", help="auto | cuda | cpu")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--steps", type=int, default=0, help="0: choose from --max-seconds")
    ap.add_argument("--max-seconds", type=float, default=420.0,
                    help="wall-clock budget of the training loop (also a hard stop)")
    ap.add_argument("--calib-steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--val-windows", type=int, default=0, help="0: all non-overlapping val windows")
    ap.add_argument("--tiny", action="store_true", help="tiny model for smoke tests")
    return ap.parse_args(argv)


def amp_ctx(use_amp):
    """bf16 autocast on CUDA; nothing on the CPU (torch 1.13 CPU builds reject a cuda autocast)."""
    if use_amp:
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def windows_of(data: torch.Tensor, ctx: int, limit: int):
    n = (data.numel() - 1) // ctx
    if limit:
        n = min(n, limit)
    starts = torch.arange(n) * ctx
    return starts


@torch.no_grad()
def evaluate(model, data, starts, ctx, device, use_amp, bs=32):
    model.eval()
    tot, cnt = 0.0, 0
    for i in range(0, len(starts), bs):
        st = starts[i:i + bs]
        idx = torch.stack([data[s:s + ctx + 1] for s in st.tolist()]).to(device).long()
        with amp_ctx(use_amp):
            logits = model(idx[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), idx[:, 1:].reshape(-1),
                               reduction="sum")
        tot += loss.item()
        cnt += idx[:, 1:].numel()
    model.train()
    return tot / cnt / math.log(2)  # bits per byte


def main(argv=None):
    a = parse(argv)
    if a.device == "auto":
        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(a.device)
    torch.manual_seed(a.seed)
    if device.type == "cuda":
        torch.cuda.manual_seed_all(a.seed)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    use_amp = device.type == "cuda"

    man, splits = load_corpus(a.corpus)
    train = torch.frombuffer(bytearray(splits["train"]), dtype=torch.uint8)
    val = torch.frombuffer(bytearray(splits["val"]), dtype=torch.uint8)
    print(f"corpus sha256 {man['sha256']}  train {train.numel()} B  val {val.numel()} B", flush=True)

    if a.tiny:
        cfg = Config(d_model=64, n_layers=2, n_heads=6, n_kv_heads=2, head_dim=16, mlp_hidden=128,
                     ctx=a.ctx, dropout=a.dropout)
    else:
        cfg = Config(ctx=a.ctx, dropout=a.dropout)
    model = ByteLM(cfg).to(device)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"model {cfg.to_dict()}  params {nparams}", flush=True)

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt_kw = {"lr": a.lr, "betas": (0.9, 0.95), "eps": 1e-8}
    if device.type == "cuda":
        try:
            opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                                     {"params": no_decay, "weight_decay": 0.0}], fused=True, **opt_kw)
        except (TypeError, RuntimeError):
            opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                                     {"params": no_decay, "weight_decay": 0.0}], **opt_kw)
    else:
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                                 {"params": no_decay, "weight_decay": 0.0}], **opt_kw)

    gen = torch.Generator().manual_seed(a.seed)
    val_starts = windows_of(val, a.ctx, a.val_windows)
    hi = train.numel() - a.ctx - 1
    steps = a.steps
    planned = None

    def lr_at(step):
        if step < a.warmup:
            return a.lr * (step + 1) / a.warmup
        total = steps if steps else 10 ** 9
        t = min(1.0, (step - a.warmup) / max(1, total - a.warmup))
        return a.lr * (a.min_lr_frac + (1 - a.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))

    loss_curve, val_curve = [], []
    best = (float("inf"), -1, None)
    os.makedirs(os.path.dirname(a.ckpt) or ".", exist_ok=True)
    model.train()
    t0 = time.time()
    tcal = None
    step = 0
    eval_time = 0.0
    stopped_by = "steps"
    while True:
        if steps and step >= steps:
            break
        if time.time() - t0 > a.max_seconds + 60:  # hard stop well past the plan
            stopped_by = "max_seconds"
            break
        starts = torch.randint(0, hi, (a.batch,), generator=gen)
        idx = torch.stack([train[s:s + a.ctx + 1] for s in starts.tolist()]).long()
        idx = idx.to(device, non_blocking=True)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        with amp_ctx(use_amp):
            logits = model(idx[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, cfg.vocab), idx[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        step += 1

        if not steps:
            if step == 5:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                tcal = time.time()
            elif step == 5 + a.calib_steps:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                per = (time.time() - tcal) / a.calib_steps
                left = a.max_seconds - (time.time() - t0)
                # reserve ~4 % of the budget for periodic validation
                steps = step + max(1, int(0.96 * left / per))
                planned = steps
                print(f"timing: {per * 1000:.1f} ms/step -> {steps} steps in {a.max_seconds:.0f} s",
                      flush=True)

        if step % a.log_every == 0 or step == 1:
            l = loss.item()
            loss_curve.append({"step": step, "loss_bpb": round(l / math.log(2), 4),
                               "lr": round(lr_at(step - 1), 6), "grad_norm": round(float(gn), 3),
                               "t": round(time.time() - t0, 1)})
            print(f"step {step:6d}  loss {l / math.log(2):.4f} bpb  lr {lr_at(step - 1):.2e}  "
                  f"gn {float(gn):.2f}  t {time.time() - t0:.1f}s", flush=True)
        last = bool(steps) and step >= steps
        if step % a.eval_every == 0 or last:
            te = time.time()
            vb = evaluate(model, val, val_starts, a.ctx, device, use_amp)
            eval_time += time.time() - te
            val_curve.append({"step": step, "val_bpb": round(vb, 4), "t": round(time.time() - t0, 1)})
            print(f"  val {vb:.4f} bpb at step {step}", flush=True)
            if vb < best[0]:
                sd = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                best = (vb, step, sd)
    wall = time.time() - t0
    if best[2] is None:  # no eval happened (e.g. stopped by time)
        vb = evaluate(model, val, val_starts, a.ctx, device, use_amp)
        val_curve.append({"step": step, "val_bpb": round(vb, 4), "t": round(time.time() - t0, 1)})
        best = (vb, step, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})

    # checkpoint: best-validation weights, stored fp16 (~13 MB)
    ckpt = {"config": cfg.to_dict(), "state_dict": {k: v.half() for k, v in best[2].items()},
            "step": best[1], "val_bpb": best[0], "seed": a.seed, "corpus_sha256": man["sha256"]}
    torch.save(ckpt, a.ckpt)

    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    log = {
        "model": cfg.to_dict(),
        "params": nparams,
        "corpus": {"name": man["corpus"], "license": man["license"], "sha256": man["sha256"],
                   "files": man["n_files"], "bytes": man["bytes"], "splits": man["splits"]},
        "seed": a.seed,
        "args": {k: v for k, v in vars(a).items()},
        "steps": step,
        "steps_planned_from_budget": planned,
        "tokens_seen": step * a.batch * a.ctx,
        "stopped_by": stopped_by,
        "wall_seconds": round(wall, 1),
        "eval_seconds": round(eval_time, 1),
        "device": dev_name,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "final_val_bpb": val_curve[-1]["val_bpb"],
        "best_val_bpb": round(best[0], 4),
        "checkpoint_step": best[1],
        "checkpoint_dtype": "float16",
        "val_windows": len(val_starts),
        "loss_curve": loss_curve,
        "val_curve": val_curve,
    }
    os.makedirs(os.path.dirname(a.log) or ".", exist_ok=True)
    with open(a.log, "w") as fh:
        json.dump(log, fh, indent=1)
    print(f"done: {step} steps, {wall:.1f} s on {dev_name}; final val {val_curve[-1]['val_bpb']:.4f} bpb, "
          f"best {best[0]:.4f} at step {best[1]}; wrote {a.ckpt} and {a.log}", flush=True)


if __name__ == "__main__":
    main()

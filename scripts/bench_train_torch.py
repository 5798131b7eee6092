#!/usr/bin/env python3
"""The PyTorch side of `just bench-train`: the solver's shapes as a transformers Llama, trained
with AdamW on random ids on the CPU (same thread count) or a GPU; prints one JSON line like
`solver-train bench`.

    python3 scripts/bench_train_torch.py --size tiny [--venv .socratic/venv-hf] [--device cuda]
(installs torch and transformers into the venv the first time: several GB; `--venv ''` runs in
the current interpreter, for a machine that already has them.)
"""
import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hf_venv import in_venv  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZES = {  # mirror solver::config::ModelConfig presets
    "micro": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1),
    "tiny": dict(hidden_size=192, intermediate_size=512, num_hidden_layers=4, num_attention_heads=6, num_key_value_heads=2),
    "small": dict(hidden_size=384, intermediate_size=1024, num_hidden_layers=8, num_attention_heads=6, num_key_value_heads=2),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="tiny", choices=sorted(SIZES))
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--gradients", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--venv", default=str(ROOT / ".socratic" / "venv-hf"))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    if args.venv:
        in_venv(Path(args.venv))

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    config = LlamaConfig(vocab_size=args.vocab, max_position_embeddings=2048, tie_word_embeddings=True,
                         rms_norm_eps=1e-6, rope_theta=10000.0, attn_implementation="eager", **SIZES[args.size])
    device = torch.device(args.device)
    model = LlamaForCausalLM(config).to(device)
    optim = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    ids = torch.randint(8, args.vocab, (64, args.context)).to(device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def step(i: int) -> None:
        batch = ids[(i * args.batch_size) % 64:][: args.batch_size]
        loss = model(batch, labels=batch).loss
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()

    step(0)
    sync()
    started = time.perf_counter()
    for i in range(args.steps):
        step(i + 1)
    sync()
    step_s = (time.perf_counter() - started) / args.steps

    # One per-example gradient of a 320-token prompt + 8 candidates of 32 tokens, flattened.
    example = torch.randint(8, args.vocab, (1, 320 + 8 * 32)).to(device)
    sync()
    started = time.perf_counter()
    for _ in range(args.gradients):
        model.zero_grad()
        model(example, labels=example).loss.backward()
        flat = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
    sync()
    gradient_ms = (time.perf_counter() - started) * 1000 / args.gradients

    print(json.dumps({
        "size": args.size, "backend": f"pytorch ({args.device})", "parameters": sum(p.numel() for p in model.parameters()),
        "threads": args.threads, "context": args.context, "batch_size": args.batch_size,
        "lm_tokens_per_s": args.batch_size * args.context / step_s, "lm_step_s": step_s,
        "gradient_ms": gradient_ms, "gradient_floats": int(flat.numel()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **({"peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20} if device.type == "cuda" else {}),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())

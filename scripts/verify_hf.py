#!/usr/bin/env python3
"""Check that Hugging Face Llama / Qwen2 weights load into the solver with the same logits.

Not part of `just test` (it installs torch and transformers, several GB): run it by hand,
    python3 scripts/verify_hf.py [--venv .socratic/venv-hf]
It builds a tiny random LlamaForCausalLM and Qwen2ForCausalLM with transformers, saves each
with save_pretrained (config.json + model.safetensors), runs `solver-train forward` on the
same token ids and prints the largest absolute difference of the logits (must be <= 1e-4).
"""
import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hf_venv import in_venv  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", default=str(ROOT / ".socratic" / "venv-hf"))
    parser.add_argument("--binary", default=str(ROOT / "target" / "release" / "solver-train"))
    args = parser.parse_args()
    in_venv(Path(args.venv))

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    shape = dict(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                 rms_norm_eps=1e-6, rope_theta=10000.0)
    models = {
        "llama (untied head)": LlamaForCausalLM(LlamaConfig(**shape, tie_word_embeddings=False)),
        "qwen2 (tied head, qkv bias)": Qwen2ForCausalLM(Qwen2Config(**shape, tie_word_embeddings=True)),
    }
    ids = [5, 17, 230, 9, 9, 101, 44, 2, 299, 63, 12, 7]
    worst = 0.0
    for name, model in models.items():
        model.eval()
        with tempfile.TemporaryDirectory() as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            with torch.no_grad():
                expected = model(torch.tensor([ids])).logits[0].numpy()
            out = subprocess.run([args.binary, "forward", "--model", tmp, "--ids", ",".join(map(str, ids))],
                                 check=True, capture_output=True, text=True)
            got = json.loads(out.stdout)["logits"]
            diff = max(abs(float(a) - float(b)) for row_e, row_g in zip(expected, got) for a, b in zip(row_e, row_g))
            print(f"{name}: max |logit difference| = {diff:.2e}")
            worst = max(worst, diff)
    ok = worst <= 1e-4
    print("OK" if ok else "MISMATCH", f"(tolerance 1e-4, worst {worst:.2e})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

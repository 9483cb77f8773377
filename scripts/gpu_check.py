"""Every GPU path of cvdemo, run once, in a few minutes; then fine-tune throughput side by side.

    python scripts/gpu_check.py                    # on a machine with CUDA: every row; a table at the end
    python scripts/gpu_check.py --dry-run          # on a CPU: the same rows on tiny data, CUDA-only rows named
    python scripts/gpu_check.py --compare --timm-repo DIR   # + images/s vs timm's train.py and Lightning
    python scripts/gpu_check.py --rows torchrun_nccl,train_cli   # only these rows (distill needs finetune)

Not a test (tests/test_gpu_check.py runs the dry run). Rows:
  classify       the torch classifier on CUDA (bf16 autocast, channels_last) vs onnxruntime on the CPU, four photos
  finetune       one fine-tune epoch through `fit` (bf16 autocast + channels_last on CUDA)
  onnx_export    ONNX export of a model that lives on the GPU; onnxruntime vs torch on the same input
  torchrun_nccl  `fit` under torchrun, one process, nccl (gloo on a CPU): the DDP path end to end
  train_cli      `torchrun -m cvdemo train` (fine-tune, 1 epoch; 2 gloo processes on a CPU): the files written, once
  distill        one epoch distilling the fine-tuned model into the small CNN student
  selftrain      one Noisy Student round on photos (pretrained features on the GPU) and one on digits
`--compare`: full fine-tune images/s of cvdemo's `fit`, timm's own train.py (from a checkout of timm's repository,
never committed here) and a plain PyTorch Lightning Trainer (bf16-mixed), same model, data, batch and workers; ratios
cvdemo/other (goal >= 1.0, on CUDA). On a CPU (or with --dry-run) the same three rows run on tiny data: their
mechanics, not the goal. A row whose tool is missing (lightning not installed, no --timm-repo) is skipped, named.
How to run it on a lent GPU: docs/gpu-check.md.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cvdemo.datasets import Dataset, load_builtin  # noqa: E402
from cvdemo.train import TrainConfig, last_event  # noqa: E402

CUDA = torch.cuda.is_available()
ROWS: list[tuple[str, str, str]] = []  # (row, "ok" | "FAIL" | "skipped", detail)
SELECTED: set[str] = set()  # --rows: run only these (empty: all)


class Skip(Exception):
    """A row that cannot run here, and why (not a failure)."""


def row(name: str, cuda_only: bool = False):
    """Run a check; record ok/FAIL with its detail line, or 'skipped' with why (a CUDA-only row on a CPU, a tool
    the row compares with that is not here)."""
    def wrap(fn):
        if SELECTED and name not in SELECTED:
            return fn
        if cuda_only and not CUDA:
            ROWS.append((name, "skipped", "needs CUDA"))
            return fn
        start = time.perf_counter()
        try:
            detail = fn()
            ROWS.append((name, "ok", f"{detail} ({time.perf_counter() - start:.1f} s)"))
        except Skip as why:  # a tool the row compares with is not here
            ROWS.append((name, "skipped", str(why)))
        except Exception as err:  # every row runs; the table says which failed and why
            traceback.print_exc()
            ROWS.append((name, "FAIL", f"{type(err).__name__}: {err}"[:300]))
        return fn
    return wrap


def textures(n: int | None) -> Dataset:
    data = load_builtin("textures")
    if n is None:
        return data
    keep = np.concatenate([np.flatnonzero(data.labels == c)[:n // 3] for c in range(len(data.classes))])
    return data.subset(keep)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true", help="tiny data, for a CPU")
    parser.add_argument("--compare", action="store_true", help="throughput vs timm train.py and Lightning")
    parser.add_argument("--timm-repo", default=None, help="a checkout of timm's repository (has train.py)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per throughput run (the last one is timed)")
    parser.add_argument("--rows", default="", help="comma-separated rows to run (default: every row)")
    args = parser.parse_args()
    SELECTED.update(filter(None, args.rows.split(",")))
    small = 24 if args.dry_run or not CUDA else None  # images: tiny on a CPU
    device = "cuda" if CUDA else "cpu"
    print(f"torch {torch.__version__}, device {torch.cuda.get_device_name() if CUDA else 'cpu'}", flush=True)
    state: dict = {}

    @row("classify", cuda_only=True)
    def _classify():
        from cvdemo.images import load_image, sample_photos
        from cvdemo.inference import Classifier, get_classifier

        cpu = get_classifier()
        assert cpu.runtime == "onnxruntime"
        from cvdemo.models import create_model

        gpu = Classifier("tf_efficientnet_lite0", create_model(), runtime="torch")
        assert gpu.device.type == "cuda"
        images = [load_image(p) for p in sample_photos()]
        p_cpu, p_gpu = cpu.probabilities(images), gpu.probabilities(images)
        agree = int((p_cpu.argmax(1) == p_gpu.argmax(1)).sum())
        assert agree == len(images), f"top-1 differs on {len(images) - agree} photo(s)"
        start = time.perf_counter()
        for _ in range(20):
            gpu.logits(gpu.preprocess(images[0]))
        ms = (time.perf_counter() - start) / 20 * 1000
        return f"top-1 agrees {agree}/{len(images)}, max |dp| {np.abs(p_cpu - p_gpu).max():.1e} (bf16), {ms:.1f} ms/img"

    @row("finetune")
    def _finetune():
        from cvdemo.datasets import split
        from cvdemo.inference import Classifier, get_classifier
        from cvdemo.train import fit
        from cvdemo.transfer import ImageSet, build_network

        data = textures(small)
        train, val = split(data, 0.2, seed=0)
        model = build_network("finetune", "tf_efficientnet_lite0", len(data.classes))
        seen = {}

        def spy(_module, inputs):  # what the first convolution really gets during training
            if model.training:
                seen.update(channels_last=inputs[0].is_contiguous(memory_format=torch.channels_last),
                            autocast=torch.is_autocast_enabled(inputs[0].device.type),
                            dtype=str(torch.get_autocast_dtype(inputs[0].device.type)))

        hook = model.conv_stem.register_forward_pre_hook(spy)
        base = get_classifier()
        config = TrainConfig(epochs=1, batch_size=32, lr=1e-3, device=device)
        last = last_event(fit(model, ImageSet(train, base), ImageSet(val, base), config=config))
        hook.remove()
        if CUDA:
            assert seen == {"channels_last": True, "autocast": True, "dtype": "torch.bfloat16"}, seen
        state["teacher"] = Classifier("fine-tuned", model, labels=data.classes, runtime="torch")
        state["data"] = data
        return (f"{len(train)} train images, val_acc {last.best['val_acc']:.3f}, first conv saw {seen}, "
                f"{len(train) / last.elapsed:.0f} images/s incl. validation")

    @row("onnx_export")
    def _onnx():
        import onnxruntime as ort

        from cvdemo.export import export_onnx
        from cvdemo.models import create_model

        model = create_model().to(device)
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(model, Path(tmp) / "m.onnx", (224, 224))
            assert next(model.parameters()).device.type == device, "export moved the caller's model"
            x = torch.randn(2, 3, 224, 224)
            with torch.no_grad():
                ref = model(x.to(device)).float().cpu().numpy()
            out = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
        return f"model on {device}, max |logit diff| onnxruntime vs torch {np.abs(out - ref).max():.1e}"

    @row("torchrun_nccl")
    def _torchrun():
        code = ("import torch, torch.distributed as dist\n"
                "from torch.utils.data import TensorDataset\n"
                "from cvdemo.train import TrainConfig, fit\n"
                "wrapped = []\n"
                "class Spy(torch.nn.parallel.DistributedDataParallel):\n"
                "    def __init__(self, *a, **k):\n"
                "        wrapped.append(True)\n"
                "        super().__init__(*a, **k)\n"
                "torch.nn.parallel.DistributedDataParallel = Spy\n"
                f"dist.init_process_group('{'nccl' if CUDA else 'gloo'}')\n"
                "torch.manual_seed(0)\n"
                "m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),\n"
                "    torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 3))\n"
                "d = TensorDataset(torch.randn(64, 3, 32, 32), torch.randint(0, 3, (64,)))\n"
                f"ev = list(fit(m, d, d, config=TrainConfig(epochs=2, batch_size=16, device='{device}')))\n"
                "print('BACKEND', dist.get_backend(), 'DDP wrapped', wrapped, ev[-1].kind, ev[-1].best['val_acc'])\n"
                "dist.destroy_process_group()\n")
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(code)
        out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                              f.name], text=True, capture_output=True, cwd=ROOT, timeout=300,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BACKEND")), None)
        assert out.returncode == 0 and line and "wrapped [True]" in line, (out.stdout + out.stderr)[-2000:]
        return line

    @row("train_cli")
    def _cli():
        processes = 1 if CUDA else 2  # one GPU: one process (nccl); a CPU: two (gloo), as a multi-GPU run splits
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp, "data")
            data = textures(small)
            for i, (image, label) in enumerate(zip(data.images, data.labels)):
                (data_dir / str(label)).mkdir(parents=True, exist_ok=True)
                image.save(data_dir / str(label) / f"{i}.png")
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
                   "-m", "cvdemo", "train", "--data", str(data_dir), "--mode", "finetune", "--epochs", "1",
                   "--out", str(Path(tmp, "out"))]
            out = subprocess.run(cmd, text=True, capture_output=True, cwd=ROOT, timeout=600,
                                 env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
            written = sorted(p.name for p in Path(tmp, "out").iterdir()) if out.returncode == 0 else []
        assert out.returncode == 0, out.stderr[-2000:]
        assert {"model.safetensors", "config.json", "model.onnx", "metrics.json"} <= set(written), written
        assert out.stdout.count("validation accuracy") == 1, out.stdout[-2000:]  # rank 0 reports, once
        return f"{processes} process(es): " + out.stdout.strip().splitlines()[-1][:160]

    @row("distill")
    def _distill():
        from cvdemo.distill import distill_classifier

        assert "teacher" in state, "needs the finetune row"
        config = TrainConfig(epochs=1, batch_size=32, lr=3e-3, device=device)
        last = last_event(distill_classifier(state["teacher"], state["data"], config=config, copies=1))
        r = last.result
        return (f"teacher val_acc {r['teacher']['val_acc']:.3f}, student {r['student']['val_acc']:.3f}, "
                f"{r['compression']:.0f}x smaller, student on {next(r['classifier'].model.parameters()).device}")

    @row("selftrain")
    def _selftrain():
        from cvdemo.selftrain import self_train

        photo = last_event(self_train("faces", labelled_fraction=0.1, rounds=1, epochs=2, copies=1)).history
        digits = last_event(self_train("digits", labelled_fraction=0.05, rounds=1, epochs=2)).history
        return (f"faces round 1 accuracy {photo[-1]['accuracy']:.3f} (baseline {photo[-1]['baseline']:.3f}); "
                f"digits {digits[-1]['accuracy']:.3f}")

    if args.compare:
        compare(args, device, small)

    width = max(len(r[0]) for r in ROWS)
    print("\n" + "\n".join(f"{name:<{width}}  {status:<7}  {detail}" for name, status, detail in ROWS))
    return 1 if any(status == "FAIL" for _, status, _ in ROWS) else 0


# --- throughput: cvdemo's fit vs timm's train.py vs a Lightning Trainer -------------------------------------

def compare(args, device: str, small: int | None) -> None:
    from cvdemo.inference import get_classifier
    from cvdemo.transfer import ImageSet

    base = textures(small)
    if small:  # a CPU: the rows' mechanics on a few batches
        data, batch, workers = base, 8, 0  # no loader processes forked from a test's process
    else:
        data = base.subset(np.tile(np.arange(len(base)), max(1, 4096 // len(base))))  # ~4k images: seconds an epoch
        batch, workers = 128, 8
    rates: dict[str, float] = {}
    setting = f"batch {batch}, {workers} workers" + ("" if CUDA else ", on the CPU: the mechanics, not the goal")

    def ratio(other: str) -> str:
        return f"cvdemo/{other} {rates.get('cvdemo', float('nan')) / rates[other]:.2f}"

    @row("thr_cvdemo")
    def _ours():
        from cvdemo.train import fit
        from cvdemo.transfer import build_network

        model = build_network("full", "tf_efficientnet_lite0", len(data.classes))
        train = ImageSet(data, get_classifier())
        config = TrainConfig(epochs=args.epochs, batch_size=batch, lr=1e-3, device=device, num_workers=workers)
        times = [event.elapsed for event in fit(model, train, None, config=config)
                 if event.kind == "step" and event.epoch == args.epochs]
        rates["cvdemo"] = batch / statistics.median(np.diff(times))
        return f"{rates['cvdemo']:.0f} images/s (full fine-tune, bf16 + channels_last on CUDA, {setting})"

    @row("thr_lightning")
    def _lightning():
        try:
            import lightning as L
        except ImportError:
            raise Skip("lightning is not installed (pip install lightning)") from None

        from cvdemo.models import create_model

        class Module(L.LightningModule):
            def __init__(self):
                super().__init__()
                self.model = create_model(num_classes=len(data.classes)).train()

            def training_step(self, b, _i):
                return torch.nn.functional.cross_entropy(self.model(b[0]), b[1])

            def configure_optimizers(self):
                return torch.optim.AdamW(self.parameters(), lr=1e-3)

        stamps: list[float] = []

        class Clock(L.Callback):
            def on_train_batch_end(self, trainer, *_a):
                if trainer.current_epoch == args.epochs - 1:
                    if CUDA:
                        torch.cuda.synchronize()
                    stamps.append(time.perf_counter())

        loader = torch.utils.data.DataLoader(ImageSet(data, get_classifier()), batch_size=batch, shuffle=True,
                                             num_workers=workers, pin_memory=CUDA, persistent_workers=workers > 0)
        trainer = L.Trainer(accelerator="gpu" if CUDA else "cpu", devices=1, precision="bf16-mixed",
                            max_epochs=args.epochs, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, callbacks=[Clock()])
        trainer.fit(Module(), loader)
        rates["lightning"] = batch / statistics.median(np.diff(stamps))
        return f"{rates['lightning']:.0f} images/s (Trainer, bf16-mixed, {setting}); {ratio('lightning')}"

    @row("thr_timm_train_py")
    def _timm():
        if not args.timm_repo or not (Path(args.timm_repo) / "train.py").is_file():
            raise Skip("needs --timm-repo DIR, a checkout of timm's repository (its train.py)")
        with tempfile.TemporaryDirectory() as tmp:
            for split, part in (("train", data), ("validation", base)):
                for i, (image, label) in enumerate(zip(part.images, part.labels)):
                    folder = Path(tmp, split, data.classes[label])
                    folder.mkdir(parents=True, exist_ok=True)
                    image.save(folder / f"{i}.png")
            cmd = [sys.executable, "train.py", "--data-dir", tmp, "--model", "tf_efficientnet_lite0", "--num-classes",
                   str(len(data.classes)), "-b", str(batch), "--epochs", str(args.epochs), "--amp", "--amp-dtype",
                   "bfloat16", "--channels-last", "--workers", str(max(workers, 1)), "--log-interval", "1",
                   "--lr", "1e-3", "--opt", "adamw", "--sched", "cosine", "--warmup-epochs", "0", "--no-aug",
                   "--img-size", "224", "--device", device, "--output", tmp]
            out = subprocess.run(cmd, cwd=args.timm_repo, text=True, capture_output=True, timeout=500,
                                 env={**os.environ, "PYTHONPATH": str(Path(args.timm_repo).resolve())})
        assert out.returncode == 0, out.stderr[-2000:]
        lines = out.stderr.splitlines() + out.stdout.splitlines()
        found = [float(m.group(1)) for ln in lines if f"Train: {args.epochs - 1} " in ln
                 for m in [re.search(r"([\d.]+)/s", ln)] if m][1:]  # the epoch's first step waits for the loader
        assert found, "\n".join(lines[-30:])
        rates["timm"] = statistics.median(found)
        return f"{rates['timm']:.0f} images/s (train.py, amp bf16, channels_last, {setting}; its loader keeps at " \
               f"least one worker); {ratio('timm')}"


if __name__ == "__main__":
    sys.exit(main())

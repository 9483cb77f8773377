"""Upload 1,000 photos of about 1 MP to a loopback cvdemo server, train on them, and print the
server's memory: "1,000 uploaded images of 1 MP each: peak RSS under 4 GB and nothing crashes".

    python scripts/upload_rss.py [--images 1000] [--epochs 30] [--batch-size 32] [--compare] [--timeout 900] [--keep]

It makes --images distinct 1152x864 JPEGs (two classes, half each) from real photos shipped with
scikit-image: random crops, rotations, flips and colour shifts of chelsea (class "cat") and coffee
(class "coffee"), scaled up to 1 MP. Then it starts `python app.py` on a free 127.0.0.1 port (offline,
as scripts/load.py does) and, as one gradio_client session: /load_dataset with source "files" (images per class)
(every file uploaded), /train (linear probe; with --compare also the from-scratch run the Train
button does by default), /classify with the model
just trained. It prints the times, the app's messages, the server's RSS before / after and its peak
(VmHWM from /proc/<pid>/status), and whether every call succeeded. Everything is bounded by --timeout
seconds. Only 127.0.0.1 is ever contacted. Nothing here asserts a timing; the exit code is 0 only if
every call succeeded, the server is still alive and its peak RSS stayed under the limit (4 GiB).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from gradio_client import Client, handle_file
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import memory, start_server, stop_server  # scripts/load.py: the same offline loopback server

SIZE = (1152, 864)           # 995,328 pixels: about 1 MP
RSS_LIMIT_MIB = 4 * 1024     # the acceptance limit (4 GB read as 4 GiB)
SAMPLE_EVERY = 0.25          # seconds between RSS samples of the monitor thread


# --- the photos ------------------------------------------------------------------------------------

def variant(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A distinct ~1 MP photo from `photo`: rotation, random crop, flip, colour shifts, then 1152x864
    (or 864x1152) with a little sensor-like noise so that every file differs."""
    angle = float(rng.uniform(-12, 12))
    image = photo.rotate(angle, resample=Image.Resampling.BICUBIC, expand=False)
    w, h = image.size
    # a crop of 45-85% of each side, inside the central 90% (no black corners from the rotation)
    scale = rng.uniform(0.45, 0.85)
    cw, ch = int(w * scale), int(min(0.9 * h, h * scale * rng.uniform(0.85, 1.15)))
    left = int(rng.uniform(0.05 * w, 0.95 * w - cw))
    top = int(rng.uniform(0.05 * h, 0.95 * h - ch))
    image = image.crop((left, top, left + cw, top + ch))
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.6, 1.4))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.7, 1.3))
    image = ImageEnhance.Color(image).enhance(rng.uniform(0.5, 1.5))
    size = SIZE if rng.random() < 0.8 else SIZE[::-1]
    image = image.resize(size, Image.Resampling.BICUBIC)
    pixels = np.asarray(image, dtype=np.float32) * rng.uniform(0.9, 1.1, size=3)  # colour cast
    pixels += rng.normal(0, 4, size=pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


SOURCES = {"cat": "chelsea", "coffee": "coffee"}  # class -> scikit-image photo


def _make_one(job: tuple[str, int, int, str]) -> str:
    name, i, seed, path = job
    from skimage import data

    rng = np.random.default_rng([seed, list(SOURCES).index(name), i])  # one stream per image: distinct files
    image = variant(Image.fromarray(getattr(data, SOURCES[name])()), rng)
    image.save(path, "JPEG", quality=int(rng.integers(82, 95)))
    return path


def make_photos(folder: Path, count: int, seed: int = 0) -> dict[str, list[Path]]:
    """count JPEGs, half "cat" (chelsea), half "coffee" (coffee), written under folder/<class>/,
    made by one process per CPU core."""
    from concurrent.futures import ProcessPoolExecutor

    jobs, files = [], {}
    for k, name in enumerate(SOURCES):
        (folder / name).mkdir(parents=True, exist_ok=True)
        n = count // 2 + (count % 2 if k == 0 else 0)
        files[name] = [folder / name / f"{name}_{i:04d}.jpg" for i in range(n)]
        jobs += [(name, i, seed, str(path)) for i, path in enumerate(files[name])]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(_make_one, jobs, chunksize=16))
    return files


# --- the server's memory, sampled while the calls run ---------------------------------------------

class Monitor(threading.Thread):
    """Samples the server's RSS (max seen) and counts the files in its upload folder."""

    def __init__(self, pid: int, upload_dir: Path | None, expected_files: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.upload_dir, self.expected = pid, upload_dir, expected_files
        self.max_rss, self.uploads_done_at, self.alive = 0, None, True
        self.halt = threading.Event()

    def files(self) -> int:
        if self.upload_dir is None or not self.upload_dir.exists():
            return 0
        return sum(len(files) for _, _, files in os.walk(self.upload_dir))

    def run(self) -> None:
        while not self.halt.wait(SAMPLE_EVERY):
            try:
                self.max_rss = max(self.max_rss, memory(self.pid)["VmRSS"])
            except (OSError, KeyError):
                self.alive = False
                return
            if self.uploads_done_at is None and self.files() >= self.expected:
                self.uploads_done_at = time.monotonic()


def upload_folder(pid: int) -> Path | None:
    """The server's GRADIO_TEMP_DIR (where Gradio keeps uploaded files), from its environment."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        key, _, value = item.partition(b"=")
        if key == b"GRADIO_TEMP_DIR":
            return Path(value.decode())
    return None


def du_mib(folder: Path | None) -> float:
    if folder is None:
        return 0.0
    total = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return total / 2**20


# --- the run -------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000, help="photos to upload, half per class")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32, help="the Train form's batch size (default 32)")
    parser.add_argument("--compare", action="store_true",
                        help="also train from scratch with the same time budget (the tab's default)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the whole run")
    parser.add_argument("--keep", action="store_true", help="keep the generated photos and the upload folder")
    args = parser.parse_args()
    if args.images < 4:
        parser.error("--images must be at least 4")
    deadline = time.monotonic() + args.timeout

    def left() -> float:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"the run went past --timeout {args.timeout:g} s")
        return remaining

    work = Path(tempfile.mkdtemp(prefix="cvdemo-upload-"))
    started = time.perf_counter()
    files = make_photos(work / "photos", args.images)
    all_files = [p for paths in files.values() for p in paths]
    sizes = [p.stat().st_size for p in all_files]
    with Image.open(all_files[0]) as first:
        shape = f"{first.size[0]}x{first.size[1]}"
    print(f"made {len(all_files)} distinct JPEGs ({', '.join(f'{c} {len(v)}' for c, v in files.items())}), "
          f"e.g. {shape}, {sum(sizes) / 2**20:.0f} MiB in all (mean {np.mean(sizes) / 1024:.0f} KiB), "
          f"in {time.perf_counter() - started:.1f} s, under {work / 'photos'}")

    try:
        proc, url = start_server(work / "app.log")  # exits with the app's log if it does not start
    except SystemExit:
        if not args.keep:
            shutil.rmtree(work / "photos", ignore_errors=True)
        raise
    pid = proc.pid
    uploads = upload_folder(pid)
    print(f"started python app.py (pid {pid}) at {url}, log {work / 'app.log'}")
    ok: dict[str, bool] = {}
    before: dict[str, int] = {}
    monitor = Monitor(pid, uploads, len(all_files))
    try:
        client = Client(url, verbose=False)
        # the default model loads in the background at start: classify once so "before" is a warm server
        warm = client.submit(handle_file(str(all_files[0])), api_name="/classify").result(timeout=left())
        before = memory(pid)
        print(f"server RSS before (warm, one classification done): {before['VmRSS']} MiB, peak so far "
              f"{before['VmHWM']} MiB; warm-up top-1 {warm.get('label')!r}")
        monitor.start()

        # 1. upload + build the dataset: "Images per class", two classes, the rest of the slots empty
        names = list(files)
        slot_names = names + [""] * (4 - len(names))
        slot_files = [[handle_file(str(p)) for p in files[n]] for n in names] + [None] * (4 - len(names))
        t0 = time.monotonic()
        try:
            message = client.submit("files", "textures", None, *slot_names, *slot_files,
                                    api_name="/load_dataset").result(timeout=left())
            ok["/load_dataset"] = isinstance(message, str) and message.startswith(f"{len(all_files)} images")
        except Exception as err:  # noqa: BLE001 - reported, then the run stops
            message, ok["/load_dataset"] = f"ERROR {type(err).__name__}: {err}", False
        t_load = time.monotonic() - t0
        after_load = memory(pid)
        upload_s = (monitor.uploads_done_at - t0) if monitor.uploads_done_at else None
        print(f"upload + load_dataset: {t_load:.1f} s"
              + (f" (all {len(all_files)} files in the upload folder after {upload_s:.1f} s, "
                 f"server-side load {t_load - upload_s:.1f} s)" if upload_s is not None else ""))
        print(f"load_dataset message: {message[:600]}")
        print(f"server RSS after load_dataset: {after_load['VmRSS']} MiB, peak {after_load['VmHWM']} MiB; "
              f"upload folder on disk {du_mib(uploads):.0f} MiB")

        # 2. train: linear probe, no from-scratch comparison
        result_line, model_name = "", None
        if ok["/load_dataset"]:
            t0 = time.monotonic()
            try:
                out = client.submit("tf_efficientnet_lite0", "probe", args.compare, args.epochs, args.batch_size, 0.01, 1e-4, 0.2, 0, False,
                                    "{}", api_name="/train").result(timeout=left())
                status, report = out[0], out[3]
                result_line = report.splitlines()[0] if report else ""
                ok["/train"] = status.startswith("Done") and "validation accuracy" in result_line
                dropdown = out[6]  # the Classify tab's model list, with the model just trained selected
                value = dropdown.get("value") if isinstance(dropdown, dict) else dropdown
                model_name = value if isinstance(value, str) and value.startswith("my model") else None
                print(f"train ({args.epochs} epochs, batch {args.batch_size}, probe{', compare from scratch' if args.compare else ''}): "
                      f"{time.monotonic() - t0:.1f} s; status: {status}")
            except Exception as err:  # noqa: BLE001
                ok["/train"] = False
                result_line = f"ERROR {type(err).__name__}: {err}"
                print(f"train: {time.monotonic() - t0:.1f} s")
            print(f"training result: {result_line}")
            if args.compare and "from scratch" in report:
                print("from scratch: " + next(line for line in report.splitlines() if "from scratch" in line))
            after_train = memory(pid)
            print(f"server RSS after train: {after_train['VmRSS']} MiB, peak {after_train['VmHWM']} MiB")

        # 3. the server still serves: classify one uploaded photo with the trained model (else the default)
        try:
            t0 = time.monotonic()
            label = client.submit(handle_file(str(files[names[-1]][0])), model_name,
                                  api_name="/classify").result(timeout=left())
            tops = ", ".join(f"{c['label']} {c['confidence']:.2f}" for c in label.get("confidences", [])[:2])
            ok["/classify"] = bool(label.get("label"))
            print(f"classify ({model_name or 'default model'}), a '{names[-1]}' photo: {label.get('label')!r} "
                  f"[{tops}] in {(time.monotonic() - t0) * 1000:.0f} ms")
        except Exception as err:  # noqa: BLE001
            ok["/classify"] = False
            print(f"classify: ERROR {type(err).__name__}: {err}")
    except TimeoutError as err:
        print(f"FAILED: {err}")
        ok["in time"] = False
    finally:
        monitor.halt.set()
        alive = proc.poll() is None
        end = memory(pid) if alive else {}
        if alive:
            print(f"server RSS: before {before.get('VmRSS', '-')} MiB, "
                  f"after {end['VmRSS']} MiB, peak {end['VmHWM']} MiB (VmHWM since start; "
                  f"max sampled every {SAMPLE_EVERY:g} s during the calls {monitor.max_rss} MiB); "
                  f"limit {RSS_LIMIT_MIB} MiB")
        else:
            print(f"server DIED (exit code {proc.returncode}); last RSS sampled {monitor.max_rss} MiB; "
                  f"see {work / 'app.log'}")
        stop_server(proc)
        if not args.keep:
            shutil.rmtree(work / "photos", ignore_errors=True)
            if uploads is not None:
                shutil.rmtree(uploads, ignore_errors=True)
    under = alive and end.get("VmHWM", RSS_LIMIT_MIB) < RSS_LIMIT_MIB
    ok["server alive"] = alive
    print("calls: " + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in ok.items())
          + f"; peak RSS under {RSS_LIMIT_MIB} MiB: {'yes' if under else 'NO'}")
    print(f"all succeeded: {all(ok.values()) and under}   total {time.perf_counter() - started:.0f} s")
    return 0 if all(ok.values()) and under else 1


if __name__ == "__main__":
    sys.exit(main())

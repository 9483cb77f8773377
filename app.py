"""cvdemo web app: `python app.py` serves http://127.0.0.1:7860 (GRADIO_SERVER_NAME/PORT override).
`kill -USR1 <pid>` writes every thread's stack to its stderr (a server that seems stuck: where it waits)."""
import signal
import sys
import threading
import traceback

from cvdemo.ui import build_demo, launch_options

demo = build_demo()


def dump_threads(signum, frame) -> None:
    """Every thread's stack to stderr, from a Python signal handler (the main thread runs it between bytecodes,
    holding the GIL). faulthandler's dump, made inside the signal while the other threads ran, once crashed a
    server (a segfault in libpython reading frames another thread was changing)."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    for ident, stack in sys._current_frames().items():
        print(f"Thread {names.get(ident, hex(ident))} (most recent call last):", "".join(traceback.format_stack(stack)),
              sep="\n", file=sys.stderr, flush=True)


if __name__ == "__main__":
    signal.signal(signal.SIGUSR1, dump_threads)
    demo.launch(**launch_options())

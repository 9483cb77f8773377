"""cvdemo web app: `python app.py` serves http://127.0.0.1:7860 (GRADIO_SERVER_NAME/PORT override).
`kill -USR1 <pid>` writes every thread's stack to its stderr (a server that seems stuck: where it waits)."""
import faulthandler
import signal

from cvdemo.ui import build_demo, launch_options

demo = build_demo()

if __name__ == "__main__":
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    demo.launch(**launch_options())

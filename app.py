"""cvdemo web app: `python app.py` serves http://127.0.0.1:7860 (GRADIO_SERVER_NAME/PORT override)."""
from cvdemo.ui import build_demo, launch_options

demo = build_demo()

if __name__ == "__main__":
    demo.launch(**launch_options())

"""The Gradio app, as a Space runs it (`python app.py`): the app's state (mrnet/app/context.py) and its page
(mrnet/app/ui.py), launched."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
try:  # on a ZeroGPU Space, `spaces` must be imported before torch touches CUDA; anywhere else it is optional
    import spaces  # noqa: F401
except ImportError:
    pass

from mrnet.app.ui import launch  # noqa: E402

if __name__ == "__main__":
    launch()

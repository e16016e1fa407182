"""mrnet: MRNet knee-MRI predictions explained with Class Activation Maps."""
from .analysis import DISCLAIMER, Analysis, analyze
from .config import PLANES, TASKS, WeightsConfig
from .errors import MRNetError
from .exam import Exam
from .inputs import load_exam, load_items
from .model import MRNet
from .weights import Weights, load_weights, save_weights

__all__ = ["DISCLAIMER", "Analysis", "analyze", "PLANES", "TASKS", "WeightsConfig", "MRNetError", "Exam",
           "load_exam", "load_items", "MRNet", "Weights", "load_weights", "save_weights"]

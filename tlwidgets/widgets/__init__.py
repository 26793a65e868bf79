"""Views of the course: ipywidgets + matplotlib, no JavaScript build step.

The logic each view needs (which groups are frozen, what a chart or table
shows, how a drawing becomes a model input) lives in plain functions next to
the view, so it is tested without a browser; the views themselves are tested
in a real JupyterLab (tests/browser). Core modules never import from here.
"""
from ._util import is_headless
from .confusion import confusion_view
from .curves import plot_learning_curve
from .dashboard import Dashboard
from .digit_pad import DigitPad
from .freeze_slider import FreezeSlider
from .gallery import gallery, plot_features_2d, show_task
from .layer_plots import plot_cut_sweep, plot_layer_sweep
from .live_chart import LiveChart
from .sentence_neighbours import SentenceNeighbours
from .token_influence import TokenInfluenceView
from .word_neighbours import WordNeighbours, plot_words_2d

__all__ = ["FreezeSlider", "LiveChart", "Dashboard", "gallery", "confusion_view", "show_task", "plot_features_2d",
           "plot_learning_curve", "DigitPad", "is_headless", "plot_layer_sweep", "plot_cut_sweep",
           "WordNeighbours", "plot_words_2d", "SentenceNeighbours", "TokenInfluenceView"]

"""Transfer Learning Lab: the small package behind the course's notebooks.

Core modules (data, models, freezing, features, training, transfer) import no
UI code; the ipywidgets/matplotlib views live in ``tlwidgets.widgets``.
"""
from .data import (
    ChecksumError,
    DataMissingError,
    Task,
    candidate_roots,
    folder_task,
    mnist_source_task,
    mnist_target_task,
    mnist_task,
    pets_task,
)
from .features import FeatureSet, cached_features, extract_features
from .freezing import FreezeReport, freeze, freeze_report, max_frozen, unfreeze_all
from .infra import derive_seed, seed_everything, select_device
from .models import (
    GroupedModel,
    build_backbone,
    digit_cnn,
    efficientnet_lite0,
    imagenet_classes,
    load_checkpoint,
    load_digit_model,
    replace_head,
    save_checkpoint,
    small_cnn,
)
from .results import record
from .runs import STRATEGIES, Recipe, RunResult
from .table import Table
from .text import (
    BagOfWords,
    TextTask,
    WordVectors,
    analogy,
    bag_model,
    encode_ids,
    fit_linear_head,
    full_glove_available,
    load_sentences,
    load_word_vectors,
    nearest,
    sentence_vectors,
    text_task,
    tokenize,
    train_bag_model,
)
from .training import (
    EarlyStopping,
    History,
    Observer,
    Prediction,
    ProgressBar,
    StopFlag,
    StopTraining,
    confusion_matrix,
    evaluate,
    fit,
    predict,
)
from .transfer import build_model, run_recipe, run_strategy

__version__ = "0.1.0"

# What the lessons use as ``tl.<name>`` (the public surface; sub-modules hold the rest).
__all__ = [
    # text (lesson 7)
    "BagOfWords", "TextTask", "WordVectors", "analogy", "bag_model", "encode_ids", "fit_linear_head",
    "full_glove_available", "load_sentences", "load_word_vectors", "nearest", "sentence_vectors", "text_task",
    "tokenize", "train_bag_model",
    # data
    "Task", "ChecksumError", "DataMissingError", "candidate_roots", "folder_task", "mnist_source_task",
    "mnist_target_task", "mnist_task", "pets_task",
    # models and freezing
    "GroupedModel", "build_backbone", "digit_cnn", "efficientnet_lite0", "imagenet_classes", "load_checkpoint",
    "load_digit_model", "replace_head", "save_checkpoint", "small_cnn", "FreezeReport", "freeze", "freeze_report",
    "max_frozen", "unfreeze_all",
    # features, training, transfer, results
    "FeatureSet", "cached_features", "extract_features", "EarlyStopping", "History", "Observer", "Prediction",
    "ProgressBar", "StopFlag", "StopTraining", "confusion_matrix", "evaluate", "fit", "predict", "seed_everything",
    "select_device", "derive_seed", "STRATEGIES", "Recipe", "RunResult", "build_model", "run_strategy", "run_recipe",
    "record", "__version__",
    # results tables (one type: text, Markdown and HTML)
    "Table",
]

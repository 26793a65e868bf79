"""Transfer Learning Lab: the small package behind the course's notebooks.

The student surface is three names: ``tlwidgets`` itself (``import tlwidgets as
tl``: everything that computes, from tasks and models to the layer-transfer
experiments), ``tlwidgets.widgets`` (everything that draws) and
``tlwidgets.checks`` (the exercise checks). A lesson imports nothing from the
sub-modules below; they are the package's own organisation, free to change.
Core modules (data, models, freezing, features, training, transfer) import no
UI code; the ipywidgets/matplotlib views live in ``tlwidgets.widgets``.
"""
from .data import (
    PETS_SPEC,
    SPECS,
    ChecksumError,
    DataMissingError,
    Task,
    as_digits,
    as_photos,
    candidate_roots,
    dataset_labels,
    dataset_tensors,
    find_dataset,
    folder_task,
    mnist_source_task,
    mnist_target_task,
    mnist_task,
    pets_task,
)
from .data.image_folders import pets_image_folder, split_image_folder
from .experiments import LearningCurve, learning_curve, subset_task, time_to_accuracy
from .features import FeatureSet, cached_features, extract_features
from .freezing import FreezeReport, batchnorm_modes, freeze, freeze_report, max_frozen, unfreeze_all
from .infra import REPO_ROOT, apply_thread_policy, derive_seed, seed_everything, select_device
from .layer_transfer import (
    SeedResults,
    feature_maps,
    output_feature_sets,
    pooled_cut_features,
    probe,
    probe_table,
    specialise_top,
    tail_features,
    train_and_test,
    train_val,
    transplant,
    yosinski_sweep,
    zero_shot_table,
)
from .metrics import classification_metrics, seed_spread
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
from .pretrained import (
    CAT_CLASSES,
    DOG_CLASSES,
    image_to_tensor,
    imagenet_class_groups,
    model_inputs,
    species_predictions,
)
from .results import checked_range, record
from .runs import STRATEGIES, Recipe, RunResult
from .table import Column, Table
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
    layerwise_lr_groups,
    predict,
    predict_proba,
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
    "mnist_target_task", "mnist_task", "pets_task", "pets_image_folder", "split_image_folder", "SPECS", "PETS_SPEC",
    "find_dataset", "as_photos", "as_digits", "dataset_labels", "dataset_tensors", "REPO_ROOT",
    # models and freezing
    "GroupedModel", "build_backbone", "digit_cnn", "efficientnet_lite0", "imagenet_classes", "load_checkpoint",
    "load_digit_model", "replace_head", "save_checkpoint", "small_cnn", "FreezeReport", "freeze", "freeze_report",
    "max_frozen", "unfreeze_all", "batchnorm_modes",
    # a pretrained model as is: ImageNet's dogs and cats, one photo as a model input
    "DOG_CLASSES", "CAT_CLASSES", "imagenet_class_groups", "species_predictions", "image_to_tensor", "model_inputs",
    # features, training, transfer, results
    "FeatureSet", "cached_features", "extract_features", "EarlyStopping", "History", "Observer", "Prediction",
    "ProgressBar", "StopFlag", "StopTraining", "confusion_matrix", "evaluate", "fit", "predict", "predict_proba",
    "layerwise_lr_groups", "seed_everything", "select_device", "apply_thread_policy", "derive_seed", "STRATEGIES",
    "Recipe", "RunResult", "build_model", "run_strategy", "run_recipe", "record", "checked_range", "__version__",
    # measurements: metrics with their spread over seeds, learning curves, layer transfer
    "classification_metrics", "seed_spread", "LearningCurve", "learning_curve", "subset_task", "time_to_accuracy",
    "SeedResults", "transplant", "train_val", "train_and_test", "yosinski_sweep", "pooled_cut_features", "probe",
    "probe_table", "zero_shot_table", "output_feature_sets", "feature_maps", "tail_features", "specialise_top",
    # results tables (one type: text, Markdown and HTML)
    "Table", "Column",
]

# Several kernels on few cores (a classroom hub, a test run) must not each start one torch thread per core:
# the count follows the CPUs this process may use ($TLLAB_THREADS, affinity, cgroup quota; docs/load.md).
apply_thread_policy()

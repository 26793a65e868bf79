"""Reference tests, micrograd style: every hand-written piece checked against its library twin.

micrograd trusts its autograd because a test runs the same expression through PyTorch and compares.
Here each piece of the package that re-does something a library also does (a metric scikit-learn
has, a split, a hash, an image decoder, a normalisation, a moving average, a training loop's running
mean) is run beside that library on random and edge-case inputs. Each test's docstring names the
twin and why the two must agree; tolerances are stated where the two legitimately differ (PIL vs
tensor resampling, L-BFGS stopping points). Everything is tiny: the file runs in a few seconds.
"""
from __future__ import annotations

import hashlib
import math
import statistics
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchvision import io as tvio
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from tlwidgets import chart_state, images, infra, metrics, runlog, splits, text, training
from tlwidgets.data.photos import ImageTensorDataset
from tlwidgets.lesson_utils import model_inputs

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              # torchvision 0.29 deprecates its decoders in favour of torchcodec; they are still the reference here
              pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")]


def _labels(rng: np.random.Generator, n: int, k: int, *, skew: bool = False) -> np.ndarray:
    p = rng.dirichlet(np.ones(k) * (0.3 if skew else 5.0))
    return rng.choice(k, size=n, p=p)


# ------------------------------------------------------------------------------------------- metrics ---
@pytest.mark.parametrize("seed", range(6))
def test_classification_metrics_agree_with_scikit_learn(seed):
    """metrics.classification_metrics ↔ sklearn accuracy_score / balanced_accuracy_score / a majority
    predictor: the course's baselines must be the numbers the field computes, or a table could flatter."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    y = _labels(rng, int(rng.integers(5, 200)), k, skew=seed % 2 == 0)
    p = np.where(rng.random(len(y)) < 0.6, y, rng.integers(0, k, len(y)))  # a 60 %-ish predictor
    m = metrics.classification_metrics(torch.as_tensor(y), p.tolist(), k)
    assert m.accuracy == pytest.approx(accuracy_score(y, p), abs=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns when p names a class absent from y, as intended here
        assert m.balanced_accuracy == pytest.approx(balanced_accuracy_score(y, p), abs=1e-6)
    majority = np.full_like(y, np.bincount(y).argmax())
    assert m.majority == pytest.approx(accuracy_score(y, majority), abs=1e-6)
    assert m.predicted_classes == len(np.unique(p))


@pytest.mark.parametrize("y, p", [
    ([3, 3, 3], [3, 3, 3]),                   # one class present, perfect
    ([0, 0, 0, 0, 1], [0, 0, 0, 0, 0]),       # a constant predictor on imbalanced data
    ([0, 1, 2], [2, 0, 1]),                   # everything wrong
    ([0, 0, 1, 1], [4, 4, 4, 4]),             # predicts a class that is not in y_true
    ([1], [0]),                               # one sample
])
def test_classification_metrics_edge_cases_agree_with_scikit_learn(y, p):
    """The same twins on the inputs where hand-written metrics usually go wrong (absent and extra classes)."""
    m = metrics.classification_metrics(y, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert m.balanced_accuracy == pytest.approx(balanced_accuracy_score(y, p), abs=1e-6)
    assert m.accuracy == pytest.approx(accuracy_score(y, p), abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_confusion_matrix_agrees_with_scikit_learn(seed):
    """training.confusion_matrix ↔ sklearn.metrics.confusion_matrix(labels=range(k)): rows are true classes,
    columns predicted, both include classes that never occur (the dashboard's heat map relies on it)."""
    rng = np.random.default_rng(100 + seed)
    k, n = int(rng.integers(2, 6)), int(rng.integers(7, 90))
    logits = torch.as_tensor(rng.normal(size=(n, k)), dtype=torch.float32)
    y = torch.as_tensor(_labels(rng, n, k, skew=True))
    loader = DataLoader(TensorDataset(logits, y), batch_size=int(rng.integers(1, 20)))
    cm = training.confusion_matrix(nn.Identity(), loader, num_classes=k, device="cpu")
    expected = sk_confusion_matrix(y.numpy(), logits.argmax(1).numpy(), labels=list(range(k)))
    np.testing.assert_array_equal(cm.numpy(), expected)


# ---------------------------------------------------------------------------------- seeds and splits ---
@pytest.mark.parametrize("values", [
    [0.81, 0.79, 0.83, 0.80, 0.82],
    [0.5],                                   # one seed: std is defined as 0 (statistics.stdev refuses)
    [0.7, 0.7, 0.7],                         # no spread
    [1e9 + 0.1, 1e9 + 0.2, 1e9 + 0.3],       # a large offset: a one-pass formula would lose the spread
    list(np.random.default_rng(3).normal(0.6, 0.05, 25)),
])
def test_seed_spread_agrees_with_statistics_and_numpy(values):
    """metrics.seed_spread ↔ statistics.mean/stdev and numpy std(ddof=1): a claim is asserted only when it
    exceeds this spread, so the spread must be the textbook sample standard deviation, not the population one."""
    s = metrics.seed_spread(values)
    assert s.mean == pytest.approx(statistics.fmean(values), rel=1e-12)
    expected_std = statistics.stdev(values) if len(values) > 1 else 0.0
    assert s.std == pytest.approx(expected_std, rel=1e-9, abs=1e-12)
    assert s.std == pytest.approx(float(np.std(values, ddof=1)) if len(values) > 1 else 0.0, rel=1e-6, abs=1e-12)
    assert (s.min, s.max, s.n) == (min(values), max(values), len(values))


def test_seed_spread_refuses_nan_where_statistics_would_return_nan():
    """The twin returns nan for a nan input; the package refuses it, because a nan spread passes no claim."""
    assert math.isnan(statistics.fmean([0.5, float("nan")]))
    with pytest.raises(ValueError, match="NaN"):
        metrics.seed_spread([0.5, float("nan")])


@pytest.mark.parametrize("seed", range(5))
def test_stratified_split_per_class_counts_agree_with_scikit_learn(seed):
    """splits.stratified_split ↔ sklearn train_test_split(stratify=...): per class the validation counts may
    differ by at most one (sklearn allocates its rounding remainder over the whole split, we round per class),
    and exactly agree when every class divides evenly. Both keep every class on both sides."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 6))
    y = np.concatenate([np.full(int(rng.integers(4, 60)), c) for c in range(k)])
    frac = float(rng.choice([0.1, 0.2, 0.25, 0.3]))
    tr, va = splits.stratified_split(y, val_fraction=frac, seed=seed)
    _, sk_va = train_test_split(y, test_size=frac, stratify=y, random_state=seed)
    ours, theirs = np.bincount(y[va.numpy()], minlength=k), np.bincount(sk_va, minlength=k)
    assert np.abs(ours - theirs).max() <= 1, (ours, theirs)
    assert np.bincount(y[tr.numpy()], minlength=k).min() >= 1
    assert sorted(tr.tolist() + va.tolist()) == list(range(len(y)))


def test_stratified_split_counts_equal_scikit_learn_when_classes_divide_evenly():
    """Same twin, no rounding: 40/20/60 samples at 25 % must give exactly sklearn's 10/5/15."""
    y = np.repeat([0, 1, 2], [40, 20, 60])
    _, va = splits.stratified_split(y, val_fraction=0.25, seed=1)
    _, sk_va = train_test_split(y, test_size=0.25, stratify=y, random_state=1)
    np.testing.assert_array_equal(np.bincount(y[va.numpy()]), np.bincount(sk_va))


# ------------------------------------------------------------------------------------------ checksums ---
@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128, 200])
def test_sha256_file_agrees_with_hashlib_on_chunk_boundaries(tmp_path, size):
    """infra.sha256_file ↔ hashlib.sha256(all bytes): the manifest check and every cache key rely on it, and a
    chunked reader is where an off-by-one (a lost or repeated last block) would hide; chunk=64 puts sizes on,
    before and after block boundaries."""
    blob = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / f"blob{size}"
    path.write_bytes(blob)
    expected = hashlib.sha256(blob).hexdigest()
    assert infra.sha256_file(path, chunk=64) == expected
    assert infra.sha256_file(path) == expected
    infra.clear_digest_memo()
    assert infra.file_digest(path) == expected


# -------------------------------------------------------------------------------------------- images ---
def _photo(seed: int, w: int, h: int) -> np.ndarray:
    """A smooth random RGB picture (gradients plus blobs), so resampling differences stay small but real."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    img = np.stack([np.sin(xx * rng.uniform(2, 9) + rng.uniform(0, 6)) + np.cos(yy * rng.uniform(2, 9))
                    for _ in range(3)], -1)
    img = (img - img.min()) / (img.max() - img.min())
    return (img * 255).round().astype(np.uint8)


@pytest.mark.parametrize("seed, w, h", [(0, 96, 64), (1, 50, 120), (2, 33, 33)])
def test_decode_image_agrees_with_torchvision_decode_image(tmp_path, seed, w, h):
    """images.decode_image ↔ torchvision.io.decode_image(mode=RGB) on a lossless PNG: the one decoder must give
    the file's pixels exactly, whatever it adds (EXIF, transparency, bit depths) on top."""
    path = tmp_path / "p.png"
    Image.fromarray(_photo(seed, w, h)).save(path)
    ours = torch.from_numpy(np.array(images.decode_image(path))).permute(2, 0, 1)
    theirs = tvio.decode_image(str(path), mode=tvio.ImageReadMode.RGB)
    assert torch.equal(ours, theirs)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_agrees_with_torchvision(tmp_path, orientation):
    """images.decode_image ↔ torchvision.io.decode_image(apply_exif_orientation=True): a phone photo stored
    sideways must come out upright in the same way, or the course's own-photo tasks would train on rotated
    images. Measured identical here; JPEG decoder builds may round differently, hence 2 levels (mean < 0.1)."""
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(_photo(orientation, 80, 48)).save(path, quality=95, exif=exif.tobytes())
    ours = torch.from_numpy(np.array(images.decode_image(path))).permute(2, 0, 1).int()
    theirs = tvio.decode_image(str(path), mode=tvio.ImageReadMode.RGB, apply_exif_orientation=True).int()
    assert ours.shape == theirs.shape == ((3, 48, 80) if orientation == 3 else (3, 80, 48))
    diff = (ours - theirs).abs()
    assert diff.max() <= 2 and diff.float().mean() < 0.1


@pytest.mark.parametrize("size, w, h", [(32, 96, 64), (24, 50, 120), (33, 33, 33)])
def test_load_image_agrees_with_torchvision_v2_resize_and_center_crop(tmp_path, size, w, h):
    """images.load_image ↔ torchvision decode_image + v2 resize(antialias) + center_crop on the tensor: the same
    geometry (short side to ``size``, centred square). The PIL and tensor antialiased bilinear filters were
    measured identical here; one level is allowed for rounding. A crop shifted by one pixel differs by far more."""
    path = tmp_path / "p.png"
    Image.fromarray(_photo(size, w, h)).save(path)
    ours = images.load_image(path, size).int()
    decoded = tvio.decode_image(str(path), mode=tvio.ImageReadMode.RGB)
    theirs = TF.center_crop(TF.resize(decoded, size, antialias=True), size).int()
    assert ours.shape == theirs.shape == (3, size, size)
    diff = (ours - theirs).abs()
    assert diff.max() <= 1 and diff.float().mean() < 0.05, (int(diff.max()), float(diff.float().mean()))


def test_preprocess_normalisation_agrees_with_torchvision_v2_normalize(tmp_path):
    """images.preprocess ↔ v2.ToDtype(float32, scale=True) + v2.Normalize on load_image's pixels: the model must
    see pixels normalised exactly as the library that defines the weights' transforms would."""
    path = tmp_path / "p.png"
    Image.fromarray(_photo(7, 70, 50)).save(path)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ours = images.preprocess(path, 40, mean, std)
    ref = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])(images.load_image(path, 40))
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


def test_image_tensor_dataset_and_model_inputs_normalise_like_torchvision():
    """data.photos.ImageTensorDataset and lesson_utils.model_inputs ↔ v2.ToDtype + v2.Normalize: the two other
    places uint8 photos become model inputs must agree with the library (and so with each other)."""
    gen = torch.Generator().manual_seed(0)
    raw = torch.randint(0, 256, (5, 3, 12, 12), dtype=torch.uint8, generator=gen)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    ref = v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])
    ds = ImageTensorDataset(raw, torch.zeros(5, dtype=torch.long), mean, std)
    for i in range(5):
        torch.testing.assert_close(ds[i][0], ref(raw[i]), atol=1e-6, rtol=0)
    model = SimpleNamespace(mean=mean, std=std, name="fake")
    torch.testing.assert_close(model_inputs(ds, model), ref(raw), atol=1e-6, rtol=0)  # type: ignore[arg-type]


def test_to_model_channels_grey_agrees_with_torchvision_and_pil():
    """images.to_model_channels(RGB -> 1) ↔ torchvision v2 rgb_to_grayscale and PIL convert("L"): the ITU-R 601
    luma weights all three use. PIL rounds in integer arithmetic, so it may differ by one level."""
    rgb = torch.as_tensor(_photo(4, 40, 30)).permute(2, 0, 1).contiguous()
    ours = images.to_model_channels(rgb, 1).int()
    tv = TF.rgb_to_grayscale(rgb.float(), num_output_channels=1).round().int()
    pil = torch.from_numpy(np.array(Image.fromarray(_photo(4, 40, 30)).convert("L"))).unsqueeze(0).int()
    assert (ours - tv).abs().max() <= 1
    assert (ours - pil).abs().max() <= 1


def test_transparent_pixels_are_composited_on_white_like_the_alpha_formula():
    """images.decode_image on RGBA ↔ the compositing formula out = a·rgb + (1 − a)·255 (numpy): a transparent
    background must look as a viewer draws it (white), not black. PIL rounds per channel: one level."""
    rng = np.random.default_rng(5)
    rgba = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    rgba[0, :, 3] = 0   # a fully transparent row
    rgba[1, :, 3] = 255  # an opaque one
    ours = np.asarray(images.decode_image(rgba)).astype(int)
    a = rgba[..., 3:4] / 255.0
    expected = np.round(a * rgba[..., :3] + (1 - a) * 255).astype(int)
    assert np.abs(ours - expected).max() <= 1
    assert (ours[0] == 255).all() and (ours[1] == rgba[1, :, :3]).all()


def test_sixteen_bit_grey_scales_by_bit_depth_like_torchvision_to_dtype(tmp_path):
    """images.decode_image on 16-bit grey (a uint16 array, and a 16-bit PNG, which PIL opens as ``I;16``) ↔
    torchvision v2.ToDtype(uint8, scale=True): pixels are scaled by the bit depth (65535 -> 255), never clipped
    to white as PIL's own ``convert("L")`` does. The two round differently (ours to nearest of x/257,
    torchvision by a right shift), so they may differ by one level."""
    vals = np.linspace(0, 65535, 60).astype(np.uint16).reshape(6, 10)
    theirs = TF.to_dtype(torch.from_numpy(vals.astype(np.int32)).to(torch.uint16), torch.uint8, scale=True)
    path = tmp_path / "grey16.png"
    Image.fromarray(vals).save(path)
    assert np.asarray(Image.open(path).convert("L")).max() == 255 == np.asarray(Image.open(path).convert("L"))[0, 1]
    for source in (vals, path):
        ours = np.asarray(images.decode_image(source, mode="L")).astype(int)
        assert np.abs(ours - theirs.numpy().astype(int)).max() <= 1, source
        assert ours.max() == 255 and ours.min() == 0


# ------------------------------------------------------------------------------------- live chart ---
@pytest.mark.parametrize("span", [1, 2, 5, 17])
def test_smoother_agrees_with_the_adjusted_exponential_moving_average(span):
    """chart_state.Smoother ↔ pandas ``Series.ewm(span=span, adjust=True).mean()``, written out in numpy (pandas
    is not installed): y_t = Σ (1−α)^i x_{t−i} / Σ (1−α)^i. Adam-style debiasing is that same average; a plain
    EMA would start at zero and pull the first points of every curve down."""
    x = np.random.default_rng(span).normal(1.0, 0.3, 40)
    alpha = 2 / (span + 1)
    expected = [float(np.sum((1 - alpha) ** np.arange(t, -1, -1) * x[:t + 1]) /
                      np.sum((1 - alpha) ** np.arange(t + 1))) for t in range(len(x))]
    sm = chart_state.Smoother(span)
    np.testing.assert_allclose([sm.add(v) for v in x], expected, rtol=1e-12)


# ------------------------------------------------------------------------------------------ widgets ---
@pytest.mark.parametrize("n, d", [(30, 10), (2, 5), (12, 1)])
def test_pca_2d_agrees_with_scikit_learn_pca(n, d):
    """widgets.gallery.pca_2d ↔ sklearn.decomposition.PCA(2, svd_solver="full"): the "do the classes separate?"
    pictures must be the textbook projection (up to each axis's sign), and the shares printed on the axes the
    explained-variance ratios; one feature (a 1-D cloud) leaves the second axis at zero."""
    from sklearn.decomposition import PCA

    from tlwidgets.widgets.gallery import pca_2d

    x = np.random.default_rng(n).normal(size=(n, d)) * np.linspace(3, 0.5, d)
    proj, shares = pca_2d(torch.as_tensor(x, dtype=torch.float32))
    q = min(2, n - 1, d)
    sk = PCA(q, svd_solver="full").fit(x)
    ref = sk.transform(x)
    ours = proj.numpy().astype(np.float64)
    for j in range(q):
        sign = np.sign(ours[:, j] @ ref[:, j]) or 1.0
        np.testing.assert_allclose(ours[:, j] * sign, ref[:, j], atol=1e-4)
    np.testing.assert_allclose(shares[:q], sk.explained_variance_ratio_, atol=1e-6)
    assert np.allclose(ours[:, q:], 0, atol=1e-5) and all(abs(v) < 1e-9 for v in shares[q:])


def test_to_display_image_inverts_torchvision_normalize():
    """widgets._util.to_display_image(x, mean, std) ↔ the inverse of v2.Normalize(mean, std): galleries show a
    normalised tensor as the photo it came from (HxWxC in [0, 1])."""
    from tlwidgets.widgets._util import to_display_image

    x = torch.rand(3, 9, 7, generator=torch.Generator().manual_seed(0))
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    shown = to_display_image(v2.Normalize(mean, std)(x), mean, std)
    np.testing.assert_allclose(shown, x.permute(1, 2, 0).numpy(), atol=1e-6)


@pytest.mark.parametrize("shape", ["diagonal", "ring", "seven", "ell"])
def test_centre_digit_puts_the_centre_of_mass_where_scipy_finds_it(shape):
    """widgets.digit_pad.centre_digit ↔ scipy.ndimage.center_of_mass: like MNIST, the drawing is scaled into a
    20x20 box and shifted so its centre of mass sits at the centre of 28x28 (13.5, 13.5), to the nearest
    pixel (so within half a pixel); a drawing in a corner of the pad must reach the model centred."""
    from scipy import ndimage

    from tlwidgets.widgets.digit_pad import centre_digit, pen_stroke

    t = np.linspace(0, 2 * np.pi, 40)
    paths = {"diagonal": [(2, 3), (14, 12)], "ring": list(zip(8 + 5 * np.sin(t), 30 + 4 * np.cos(t))),
             "seven": [(25, 2), (25, 14), (38, 6)], "ell": [(2, 22), (32, 22), (32, 36)]}
    grid = pen_stroke(np.zeros((40, 40), np.float32), paths[shape], radius=1.5)
    out = centre_digit(grid).numpy()
    rows, cols = np.nonzero(out > 0.05)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 21
    cy, cx = ndimage.center_of_mass(out)
    assert abs(cy - 13.5) <= 0.5 + 1e-6 and abs(cx - 13.5) <= 0.5 + 1e-6, (cy, cx)


# -------------------------------------------------------------------------------------------- text ---
WORDS = ["good", "bad", "film", "plot", "actor", "great", "boring", "x", "a", "i", "2", "10", "3d"]


def test_tokenize_agrees_with_count_vectorizer_on_plain_words():
    """text.tokenize ↔ sklearn CountVectorizer's analyzer (token_pattern \\b\\w+\\b, lower case) on sentences of
    plain words and numbers: there the two must agree; they differ by design only where GloVe's tokenization
    does (clitics, punctuation, hyphens, decimals), checked below."""
    rng = np.random.default_rng(0)
    analyzer = CountVectorizer(token_pattern=r"(?u)\b\w+\b").build_analyzer()
    for _ in range(50):
        words = [str(w).upper() if rng.random() < 0.2 else str(w) for w in rng.choice(WORDS, int(rng.integers(0, 12)))]
        sentence = (" " * int(rng.integers(1, 3))).join(words)
        assert text.tokenize(sentence) == analyzer(sentence), sentence
    assert text.tokenize("Don't stop") == ["do", "n't", "stop"] and analyzer("Don't stop") == ["don", "t", "stop"]


def test_bag_of_words_agrees_with_count_vectorizer_on_raw_text():
    """text.BagOfWords ↔ CountVectorizer(tokenizer=tokenize, binary=True) fitted on raw strings: the baseline's
    columns and 0/1 entries must be the library's, whether sentences come as text or as token lists."""
    train = ["A great film", "a boring plot, a boring film", "Great actor!", "didn't like it"]
    test = ["great great plot", "unknown words only", "the actor didn't"]
    ours = text.BagOfWords(train)
    cv = CountVectorizer(tokenizer=text.tokenize, lowercase=False, binary=True, token_pattern=None).fit(train)
    assert ours.words == list(cv.get_feature_names_out())
    np.testing.assert_array_equal(ours.encode(test).numpy(), cv.transform(test).toarray())
    np.testing.assert_array_equal(ours.encode([text.tokenize(t) for t in test]).numpy(), cv.transform(test).toarray())


@pytest.fixture(scope="module")
def random_vectors():
    gen = torch.Generator().manual_seed(0)
    words = [f"w{i}" for i in range(200)]
    return text.WordVectors(words, torch.randn(200, 16, generator=gen))


def test_nearest_agrees_with_torch_cosine_similarity(random_vectors):
    """text.nearest ↔ F.cosine_similarity over the whole table + a full sort: the neighbours a lesson prints
    must be the true top-k by cosine, the query word excluded."""
    wv = random_vectors
    for query in ("w0", "w17", "w199"):
        sims = F.cosine_similarity(wv.vectors, wv[query].unsqueeze(0), dim=1)
        order = [i for i in sims.argsort(descending=True).tolist() if wv.words[i] != query][:7]
        got = text.nearest(wv, query, 7)
        assert [w for w, _ in got] == [wv.words[i] for i in order]
        np.testing.assert_allclose([s for _, s in got], sims[order].numpy(), atol=1e-5)


def test_analogy_agrees_with_torch_on_b_minus_a_plus_c(random_vectors):
    """text.analogy ↔ cosine of every word with (b − a + c), a, b and c excluded, computed in torch directly."""
    wv = random_vectors
    target = wv["w2"] - wv["w1"] + wv["w3"]
    sims = F.cosine_similarity(wv.vectors, target.unsqueeze(0), dim=1)
    order = [i for i in sims.argsort(descending=True).tolist() if wv.words[i] not in ("w1", "w2", "w3")][:5]
    assert [w for w, _ in text.analogy(wv, "w1", "w2", "w3")] == [wv.words[i] for i in order]


def test_sentence_vectors_agree_with_embedding_bag_mean(random_vectors):
    """text.sentence_vectors (frozen features) ↔ nn.EmbeddingBag(mode="mean") over encode_ids, and the frozen
    bag_model's embedding: the lesson claims "mean GloVe vector → linear head" IS the frozen bag model, so
    the two routes must give the same vectors, including a sentence with no known word (zeros)."""
    wv = random_vectors
    sentences = [["w1", "w2", "zzz"], ["w5"], ["nothing", "known"], ["w7", "w7", "w9", "w3"]]
    ours = text.sentence_vectors(wv, sentences)
    ids = text.encode_ids(wv, sentences)
    table = torch.cat([torch.zeros(1, wv.dim), wv.vectors])
    bag = nn.EmbeddingBag.from_pretrained(table, mode="mean", padding_idx=0)
    torch.testing.assert_close(ours, bag(ids), atol=1e-6, rtol=0)
    torch.testing.assert_close(ours, text.bag_model(wv, freeze=True).embedding(ids), atol=1e-6, rtol=0)


@pytest.mark.parametrize("k", [2, 3])
def test_fit_linear_head_agrees_with_scikit_learn_logistic_regression(k):
    """text.fit_linear_head ↔ sklearn LogisticRegression (lbfgs, L2): both minimise mean cross-entropy + an L2
    penalty on the weights, so with C matched (C = 1/(wd·n) for k softmax rows; 2/(wd·n) for sklearn's single
    binary weight vector, which equals the difference of our two rows) the probabilities agree up to where
    the two L-BFGS runs stop (measured 3.6e-4 and 1.3e-4; stated: 2e-3)."""
    gen = torch.Generator().manual_seed(k)
    n, d, wd = 120, 5, 0.05
    centres = torch.randn(k, d, generator=gen) * 1.5
    y = torch.arange(n) % k
    x = centres[y] + torch.randn(n, d, generator=gen)
    head = text.fit_linear_head(x, y, x[:k], y[:k], weight_decays=[wd], num_classes=k)
    ours = head.model(x).softmax(1).detach().numpy()
    c = (2.0 if k == 2 else 1.0) / (wd * n)
    sk = LogisticRegression(C=c, tol=1e-10, max_iter=5000).fit(x.numpy(), y.numpy())
    np.testing.assert_allclose(ours, sk.predict_proba(x.numpy()), atol=2e-3)


# ---------------------------------------------------------------------------------- training loop ---
class _Recorder(training.Observer):
    def __init__(self) -> None:
        self.batches: list[dict] = []
        self.epochs: list[dict] = []

    def on_batch_end(self, logs: dict) -> None:
        self.batches.append(dict(logs))

    def on_epoch_end(self, logs: dict) -> None:
        self.epochs.append(dict(logs))


@pytest.mark.parametrize("n, batch_size", [(50, 16), (48, 16), (7, 32)])
def test_fit_running_means_agree_with_torch_on_the_whole_epoch(n, batch_size):
    """training.fit's running loss/acc ↔ torch's F.cross_entropy and argmax over the same batches, computed in
    one go. With a learning rate of 1e-12 the weights do not move, so the epoch's logged loss must equal the
    mean per-sample cross-entropy of the whole training set: a running mean that averaged batch means (the
    classic bug) would be off whenever the last batch is short (50 = 16+16+16+2). runlog.BatchValues, which
    recovers each batch's own values from running means (old logs), is checked against the same torch numbers."""
    gen = torch.Generator().manual_seed(n)
    x, y = torch.randn(n, 6, generator=gen), torch.randint(0, 3, (n,), generator=gen)
    torch.manual_seed(0)
    model = nn.Linear(6, 3)
    frozen = [p.detach().clone() for p in model.parameters()]
    rec = _Recorder()
    training.fit(model, DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False),
                 DataLoader(TensorDataset(x, y), batch_size=5), num_epochs=1, lr=1e-12, progress=False,
                 observers=[rec], device="cpu", seed=None)
    with torch.no_grad():
        out = F.linear(x, *frozen)
        per_sample = F.cross_entropy(out, y, reduction="none")
        correct = (out.argmax(1) == y).double()
    seen = torch.cumsum(torch.tensor([b["size"] for b in rec.batches]), 0)
    for b, upto in zip(rec.batches, seen.tolist()):
        assert b["loss"] == pytest.approx(per_sample[:upto].mean().item(), abs=1e-5)
        assert b["acc"] == pytest.approx(correct[:upto].mean().item(), abs=1e-9)
    epoch = rec.epochs[0]
    assert epoch["loss"] == pytest.approx(F.cross_entropy(out, y).item(), abs=1e-5)
    assert epoch["acc"] == pytest.approx(accuracy_score(y.numpy(), out.argmax(1).numpy()), abs=1e-9)
    assert epoch["val_loss"] == pytest.approx(F.cross_entropy(out, y).item(), abs=1e-5)  # evaluate(), batches of 5
    values = runlog.BatchValues()
    starts = [0, *seen.tolist()[:-1]]
    for b, lo, hi in zip(rec.batches, starts, seen.tolist()):
        old_style = {k: v for k, v in b.items() if k not in ("batch_loss", "batch_acc")}
        loss, acc = values.add(old_style)
        assert loss == pytest.approx(per_sample[lo:hi].mean().item(), abs=1e-4)
        assert acc == pytest.approx(correct[lo:hi].mean().item(), abs=1e-6)

